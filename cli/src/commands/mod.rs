//! Dispatch of each command, and what commands share: finding the node, naming networks,
//! printing text or JSON.

mod backup;
mod doctor;
mod erase;
mod ids;
mod network;
mod node;
mod read;
mod resource;
mod school;
mod search;
mod sources;
mod web;
mod write;

pub use resource::size;
pub use staffroom_node::thread::{CommentNode, Thread};

use std::io::Write;

use anyhow::bail;
use serde::Serialize;
use staffroom_node::api::ApiClient;
use staffroom_node::config::{default_data_dir, DataDir};
use staffroom_protocol::NetworkId;

use crate::args::{
    Cli, Command, EnquiryCommand, NetworkCommand, NodeCommand, ProfileCommand, ResourceCommand,
    SchoolCommand, WebCommand,
};
use staffroom_protocol::membership::{Policy, Profile};

/// What every command needs: where the data lives and how to print.
pub struct Ctx {
    pub data: DataDir,
    pub json: bool,
}

impl Ctx {
    /// A client for the node that runs on this data directory.
    pub fn api(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::from_data_dir(self.data.path())?)
    }

    /// Prints `value` as JSON with `--json`, or else `text()`.
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        } else {
            let text = text();
            write!(out, "{text}")?;
            if !text.ends_with('\n') && !text.is_empty() {
                writeln!(out)?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Neither needs a data directory (packagers run them at build time, with no home).
    match cli.command {
        Command::Completions { shell } => return completions(shell),
        Command::Man => return man_page(),
        Command::Help { command } => return help(&command),
        _ => {}
    }
    let dir = match cli.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let ctx = Ctx {
        data: DataDir::new(&dir),
        json: cli.json,
    };
    match cli.command {
        Command::Init => node::init(&ctx),
        Command::Backup { dest, keys_only } => backup::backup(&ctx, &dest, keys_only),
        Command::Restore { src, force } => backup::restore(&ctx, &src, force),
        Command::Node(NodeCommand::Run(args)) => node::run(&ctx, args).await,
        Command::Node(NodeCommand::Purge { id }) => erase::purge(&ctx, &id).await,
        Command::Node(NodeCommand::Doctor) => doctor::doctor(&ctx).await,
        Command::Delete { id, reason } => erase::delete(&ctx, &id, reason).await,
        Command::Hide { id, reason } => erase::hide(&ctx, &id, reason).await,
        Command::Network(command) => network_command(&ctx, command).await,
        Command::Profile(ProfileCommand::Set { name, school, role }) => {
            let profile = Profile {
                display_name: name,
                school,
                role,
            };
            network::set_profile(&ctx, profile).await
        }
        Command::Post(args) => write::blog_post(&ctx, args).await,
        Command::Resource(ResourceCommand::Add(args)) => write::resource(&ctx, *args).await,
        Command::Resource(ResourceCommand::Get { id, out, timeout }) => {
            resource::get(&ctx, &id, &out, std::time::Duration::from_secs(timeout)).await
        }
        Command::Resource(ResourceCommand::Files { id }) => resource::files(&ctx, &id).await,
        Command::Resource(ResourceCommand::Sources { id, based_on }) => {
            sources::command(&ctx, &id, &based_on).await
        }
        Command::Enquiry(EnquiryCommand::Start(args)) => write::enquiry(&ctx, args).await,
        Command::Enquiry(EnquiryCommand::Note(args)) => write::note(&ctx, args).await,
        Command::Comment(args) => write::comment(&ctx, args).await,
        Command::List(args) => read::list(&ctx, args).await,
        Command::Search(args) => search::search(&ctx, args).await,
        Command::Show { id } => read::show(&ctx, &id).await,
        Command::Web(WebCommand::Login) => web::login(&ctx).await,
        Command::Completions { .. } | Command::Man | Command::Help { .. } => Ok(()),
        Command::Peers => read::peers(&ctx).await,
        Command::Dial { addr } => read::dial(&ctx, &addr).await,
        Command::Sync { network } => read::sync(&ctx, network.as_deref()).await,
        Command::Status => read::status(&ctx).await,
        Command::Connect { addr, pin } => school::connect(&ctx, &addr, pin).await,
        Command::School(SchoolCommand::AddTeacher { key, name }) => {
            school::add_teacher(&ctx, &key, &name).await
        }
        Command::School(SchoolCommand::RemoveTeacher { key }) => {
            school::remove_teacher(&ctx, &key).await
        }
        Command::School(SchoolCommand::List) => school::list(&ctx).await,
    }
}

async fn network_command(ctx: &Ctx, command: NetworkCommand) -> anyhow::Result<()> {
    match command {
        NetworkCommand::Create {
            name,
            invite_only,
            private,
            no_history,
            description,
        } => {
            let policy = match (private, no_history, invite_only) {
                (true, false, _) => Policy::Private,
                (true, true, _) => Policy::PrivateFromJoining,
                (false, _, true) => Policy::InviteOnly,
                (false, _, false) => Policy::Open,
            };
            network::create(ctx, &name, policy, &description).await
        }
        NetworkCommand::Invite {
            network,
            uses,
            expires,
        } => network::invite(ctx, network.as_deref(), uses, &expires).await,
        NetworkCommand::Join { token } => network::join(ctx, &token).await,
        NetworkCommand::Members { network } => network::members(ctx, network.as_deref()).await,
        NetworkCommand::Remove { network, member } => network::remove(ctx, &network, &member).await,
        NetworkCommand::Promote { network, member } => {
            network::promote(ctx, &network, &member).await
        }
        NetworkCommand::Demote { network, member } => network::demote(ctx, &network, &member).await,
        NetworkCommand::Leave { network, purge } => network::leave(ctx, &network, purge).await,
        NetworkCommand::List => network::list(ctx).await,
        NetworkCommand::Publish {
            network,
            members_only,
        } => network::publish(ctx, &network, !members_only).await,
        NetworkCommand::Files {
            network,
            eager,
            on_demand,
            quota,
        } => {
            let eager = (eager || on_demand).then_some(eager);
            resource::network_files(ctx, network.as_deref(), eager, quota.as_deref()).await
        }
    }
}

/// A network given by id or by local name; with none given, the only network joined.
/// Writes the completion script for `shell` to stdout. (Made in memory first:
/// `clap_complete` panics on a write error, such as a closed pipe.)
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "staffroom", &mut script);
    write_out(&script)
}

/// Writes the manual page, in roff, to stdout.
fn man_page() -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    write_out(&page)
}

/// `staffroom help [COMMAND…]`: the long help of the command named by `path`.
fn help(path: &[String]) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for name in path {
        let Some(sub) = cmd.find_subcommand(name).cloned() else {
            let known: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
            bail!(
                "no command {name:?} here; the commands are: {}",
                known.join(", ")
            );
        };
        cmd = sub.bin_name(format!(
            "{} {name}",
            cmd.get_bin_name().unwrap_or(cmd.get_name())
        ));
    }
    write_out(cmd.render_long_help().to_string().as_bytes())
}

fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    Ok(out.flush()?)
}

/// The network whose id starts with `text` (names were tried first).
fn network_by_prefix(
    networks: &[staffroom_node::store::NetworkRecord],
    text: &str,
) -> anyhow::Result<NetworkId> {
    let unknown = || anyhow::anyhow!("no network named {text:?}: see `staffroom network list`");
    let Ok(prefix) = text.parse::<staffroom_protocol::IdPrefix>() else {
        return Err(unknown());
    };
    let found: Vec<_> = networks
        .iter()
        .filter(|n| prefix.matches(n.id.as_bytes()))
        .collect();
    if found.is_empty() {
        return Err(unknown());
    }
    let ids: Vec<NetworkId> = found.iter().map(|n| n.id).collect();
    let described: Vec<String> = found
        .iter()
        .map(|n| format!("{}  {}", n.id, n.name))
        .collect();
    ids::pick(&prefix, "network", &ids, &described)
}

pub async fn resolve_network(api: &ApiClient, given: Option<&str>) -> anyhow::Result<NetworkId> {
    let networks = api.networks().await?;
    match given {
        Some(text) => {
            if let Ok(id) = text.parse::<NetworkId>() {
                return Ok(id);
            }
            let named: Vec<_> = networks.iter().filter(|n| n.name == text).collect();
            match named.as_slice() {
                [one] => Ok(one.id),
                [] => network_by_prefix(&networks, text),
                _ => bail!("several networks are named {text:?}: give the network's id"),
            }
        }
        None => match networks.as_slice() {
            [one] => Ok(one.id),
            [] => {
                bail!("this node has joined no network: `staffroom network create` or `join` one")
            }
            _ => bail!(
                "this node is in {} networks: choose one with --network",
                networks.len()
            ),
        },
    }
}
