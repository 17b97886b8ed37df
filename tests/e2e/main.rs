//! End-to-end tests across real Staffroom nodes on 127.0.0.1. One module per feature.

mod api_abuse;
#[cfg(feature = "browser")]
mod browser;
mod churn;
mod cli;
mod cli_backup;
mod cli_erasure;
mod cli_files;
mod cli_help;
mod cli_ids;
mod cli_private;
mod cli_search;
mod cli_threads;
mod cli_web;
mod erasure;
mod files;
mod forged;
mod kill;
mod membership;
mod peers;
mod private;
mod readme;
mod replication;
mod restart;
mod scale;
mod sync;
mod teachers;
mod verdict;
mod web;
mod web_budget;
mod web_public;
mod web_site;
mod web_write;
