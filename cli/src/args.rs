//! The command line: every command, flag and help text of `staffroom`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use staffroom_protocol::{EntryKind, Stage};

#[derive(Parser)]
#[command(
    name = "staffroom",
    version,
    about = "Staffroom: blogs, shared resources and practitioner enquiry across schools, peer to peer.",
    long_about = "Staffroom: blogs, shared resources and practitioner enquiry across schools, peer to peer.\n\n\
        Each school runs a node (`staffroom node run`); teachers write with their own signing key \
        (`staffroom init`), and nodes share what is posted with the other schools of a network.",
    propagate_version = true,
    // Our own `help` command, which takes `--help` like every other.
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Data directory of the teacher's key and the node [default: the user's data dir]
    #[arg(long, global = true, env = "STAFFROOM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create your teacher signing key and a default config
    Init,
    /// Run and inspect this school's node
    #[command(subcommand)]
    Node(NodeCommand),
    /// Create, join and list networks of schools; invite, remove and promote members
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Your profile: how other members see you
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Write a blog post (body from --body-file, --text or stdin)
    Post(PostArgs),
    /// Share teaching resources
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Practitioner enquiry: start one, add notes to it
    #[command(subcommand)]
    Enquiry(EnquiryCommand),
    /// Comment on any entry
    Comment(CommentArgs),
    /// List entries, newest first, narrowed by any filters
    List(ListArgs),
    /// Search titles, bodies, tags and subjects; best matches first, with the same filters as
    /// `list` (`--json` adds counts per tag, subject, key stage, licence, kind, network and
    /// author)
    Search(SearchArgs),
    /// Delete your own entry (every version) from every node; a facilitator removes another's
    Delete {
        /// Entry id, or its first characters (at least 4, as `list` shows them)
        id: String,
        /// Why, as a code kept with the tombstone (never free text)
        #[arg(long, value_enum, default_value_t = Reason::Mistake)]
        reason: Reason,
    },
    /// Hide an entry from listings on every node (facilitators); it is kept
    Hide {
        /// Entry id, or its first characters (at least 4, as `list` shows them)
        id: String,
        /// Why, as a code kept with the hide
        #[arg(long, value_enum, default_value_t = Reason::Other)]
        reason: Reason,
    },
    /// Back up your teacher key, the node's key and config and — while the node is stopped —
    /// its store and files, into a new directory (keep it offline: it holds your identity)
    Backup {
        /// The directory to create (it must not exist, or be empty)
        dest: PathBuf,
        /// Only the keys and config, even when the node is stopped
        #[arg(long)]
        keys_only: bool,
    },
    /// Restore a backup into the data directory (stop the node first), each file checked;
    /// what it replaces is kept aside in before-restore-<time>/
    Restore {
        /// The backup's directory
        src: PathBuf,
        /// Replace a different teacher key already in the data directory
        #[arg(long)]
        force: bool,
    },
    /// Print a completion script for your shell, e.g. `staffroom completions bash >
    /// ~/.local/share/bash-completion/completions/staffroom`
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `staffroom man | man -l -`
    Man,
    /// Explain staffroom or one of its commands, e.g. `staffroom help network invite`
    Help {
        /// The command, and its subcommands, to explain
        command: Vec<String>,
    },
    /// The node's web pages
    #[command(subcommand)]
    Web(WebCommand),
    /// Show one entry in full, with its signature checked
    Show {
        /// Entry id, or its first characters (at least 4, as `list` shows them)
        id: String,
    },
    /// Peers this node is connected to
    Peers,
    /// Dial a peer node by its multiaddr (…/p2p/<peer id>)
    Dial {
        /// The peer's address, e.g. /ip4/192.0.2.1/tcp/4040/p2p/12D3… (`staffroom status` on
        /// that node shows it)
        addr: String,
    },
    /// Catch up now with every connected peer: fetch what this node lacks, send what they lack
    Sync {
        /// Only this network (id or local name)
        #[arg(long, short)]
        network: Option<String>,
    },
    /// This node's identity, addresses and counts
    Status,
    /// Use a school node on another computer: pins its identity in this data directory
    Connect {
        /// The node's API address, host:port (the school's admin tells you)
        addr: String,
        /// The pin of the node's TLS certificate (`blake3:…`, from the admin or the node's
        /// api.pin); without it, the certificate shown now is trusted and kept
        #[arg(long)]
        pin: Option<String>,
    },
    /// The school's teachers on this node (the admin registers them)
    #[command(subcommand)]
    School(SchoolCommand),
}

#[derive(Subcommand)]
pub enum SchoolCommand {
    /// Let a teacher use this node with their own key (admin only)
    AddTeacher {
        /// The teacher's author key, as `staffroom init` printed it on their computer
        key: String,
        /// Their name, for this node's list
        #[arg(long)]
        name: String,
    },
    /// Stop a teacher using this node (admin only)
    RemoveTeacher {
        /// The teacher's author key
        key: String,
    },
    /// Teachers registered on this node (admin only)
    List,
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Run the school node in the foreground (Ctrl-C stops it cleanly)
    Run(NodeRunArgs),
    /// What stands between this node and other schools, and what to do about each problem
    Doctor,
    /// Purge an entry and its files from this node only, for good (the school's admin; for
    /// legal reasons). Other nodes keep it: to take it back everywhere, `staffroom delete`
    Purge {
        /// Entry id, or its first characters (at least 4, as `list` shows them)
        id: String,
    },
}

/// Why an entry is erased: a code, so that a tombstone kept forever holds no words about
/// anyone.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Reason {
    Mistake,
    PersonalData,
    Copyright,
    Other,
}

#[derive(Args)]
pub struct NodeRunArgs {
    /// Config file [default: <data dir>/config.toml if present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// libp2p listen address (repeatable), e.g. /ip4/0.0.0.0/tcp/4040
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// A peer to dial and keep connected (repeatable), e.g. /ip4/192.0.2.1/tcp/4040/p2p/12D3…
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<String>,
    /// Address of the local client API, e.g. 127.0.0.1:4041 or localhost:4041
    #[arg(long, value_name = "ADDR", value_parser = api_addr)]
    pub api: Option<SocketAddr>,
    /// Address of the web pages, e.g. 127.0.0.1:4042 or localhost:4042
    #[arg(long, value_name = "ADDR", value_parser = api_addr)]
    pub web: Option<SocketAddr>,
    /// Do not look for peers on the local network by mDNS
    #[arg(long)]
    pub no_mdns: bool,
}

#[derive(Subcommand)]
pub enum WebCommand {
    /// Print a link that signs you in to your school node's web pages: it works once, within
    /// a few minutes, in the browser you open it in
    Login,
}

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Found a new network, with you as its first facilitator and this node bound to it
    Create {
        /// The network's name, shown to every member
        name: String,
        /// Only people with an invite may join (otherwise anyone with a token may)
        #[arg(long)]
        invite_only: bool,
        /// Private: invite only, and what members write is sealed so that only members'
        /// nodes can read it; relays carry it unread. The name travels in invites only
        #[arg(long, conflicts_with = "invite_only")]
        private: bool,
        /// With --private: new members read only what is written after they join (by
        /// default they are given the network's history)
        #[arg(long, requires = "private")]
        no_history: bool,
        /// A short description (markdown; not with --private)
        #[arg(long, default_value = "", conflicts_with = "private")]
        description: String,
    },
    /// Make an invite token for others to join with (prints the token)
    Invite {
        /// Network id (or its first characters) or name [default: the only network followed]
        network: Option<String>,
        /// How many joins the invite admits
        #[arg(long, default_value_t = 1)]
        uses: u16,
        /// How long it stays valid: e.g. 30m, 12h, 7d
        #[arg(long, default_value = "7d")]
        expires: String,
    },
    /// Join a network with an invite token: dials the inviter's node and catches up
    Join {
        /// The token `staffroom network invite` printed
        token: String,
    },
    /// Members of a network, with their roles and profiles
    Members {
        /// Network id (or its first characters) or name [default: the only network followed]
        network: Option<String>,
    },
    /// Remove a member (facilitators only; a facilitator only by a more senior one)
    Remove {
        /// Network id (or its first characters) or name
        network: String,
        /// The member's key (hex) or display name
        member: String,
    },
    /// Make a member a facilitator
    Promote {
        /// Network id (or its first characters) or name
        network: String,
        /// The member's key (hex) or display name
        member: String,
    },
    /// Take the facilitator role from a member
    Demote {
        /// Network id (or its first characters) or name
        network: String,
        /// The member's key (hex) or display name
        member: String,
    },
    /// Leave a network; this node stops following it too
    Leave {
        /// Network id (or its first characters) or name
        network: String,
        /// Also delete the network's entries and files from this node (the school's admin)
        #[arg(long)]
        purge: bool,
    },
    /// Make a network's pages public on its member schools' nodes, or members-only again
    /// (facilitators; a private network's are never public)
    Publish {
        /// Network id (or its first characters) or name
        network: String,
        /// Members only again: only the schools' signed-in teachers read its pages
        #[arg(long)]
        members_only: bool,
    },
    /// Networks this node follows
    List,
    /// How this node fetches a network's files: show it, or set it (the school's admin)
    Files {
        /// Network id (or its first characters) or name [default: the only network followed]
        network: Option<String>,
        /// Fetch files as soon as their resources arrive, within the quota
        #[arg(long, conflicts_with = "on_demand")]
        eager: bool,
        /// Fetch files only when a teacher asks (`staffroom resource get`)
        #[arg(long)]
        on_demand: bool,
        /// Stop fetching eagerly once this network's files here reach this size, e.g. 20GiB
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Set how other members see you, in every network you are a member of
    Set {
        /// Your name as colleagues know it
        #[arg(long)]
        name: String,
        /// Your school
        #[arg(long, default_value = "")]
        school: String,
        /// Your role, e.g. "Head of maths"
        #[arg(long, default_value = "")]
        role: String,
    },
}

/// Where an entry goes and what it replaces.
#[derive(Args)]
pub struct Target {
    /// Network id (or its first characters) or local name [default: the only network joined]
    #[arg(long, short)]
    pub network: Option<String>,
    /// Publish as an edit of this earlier entry of yours
    #[arg(long, value_name = "ENTRY_ID")]
    pub edits: Option<String>,
}

/// Markdown body text.
#[derive(Args)]
pub struct BodyArgs {
    /// Read the body from this file ("-" for stdin)
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    pub body_file: Option<PathBuf>,
    /// The body as an argument
    #[arg(long)]
    pub text: Option<String>,
}

#[derive(Args)]
pub struct PostArgs {
    #[command(flatten)]
    pub target: Target,
    /// The post's title (one line)
    #[arg(long)]
    pub title: String,
    /// A tag (repeatable)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Subcommand)]
pub enum ResourceCommand {
    /// Share a resource, with its files (uploaded to your node, then fetched by the others)
    Add(Box<ResourceArgs>),
    /// Fetch a resource's files to this node, then save them in a directory
    Get {
        /// The resource's entry id, or its first characters (at least 4)
        id: String,
        /// Directory to save the files in
        #[arg(long, short, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Give up if the files have not arrived after this many seconds
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        timeout: u64,
    },
    /// A resource's files: how much of each is on this node, and which nodes have them
    Files {
        /// The resource's entry id, or its first characters (at least 4)
        id: String,
    },
    /// Say what one of your resources is based on, replacing what you said before (no
    /// --based-on: it is based on nothing)
    Sources {
        /// The resource's entry id, or its first characters (at least 4)
        id: String,
        /// An entry it is based on (id or its first characters) or a web address (repeatable)
        #[arg(long = "based-on", value_name = "SOURCE")]
        based_on: Vec<String>,
    },
}

#[derive(Args)]
pub struct ResourceArgs {
    #[command(flatten)]
    pub target: Target,
    /// The resource's title, as it is listed (one line)
    #[arg(long)]
    pub title: String,
    /// A subject (repeatable), e.g. mathematics
    #[arg(long = "subject")]
    pub subjects: Vec<String>,
    /// Learners' ages in years, e.g. 11-14
    #[arg(long, value_name = "MIN-MAX")]
    pub ages: String,
    /// Key stage or phase, e.g. KS3
    #[arg(long, default_value = "")]
    pub key_stage: String,
    /// SPDX licence identifier
    #[arg(long, default_value = "CC-BY-4.0")]
    pub licence: String,
    /// BCP 47 language tag
    #[arg(long, default_value = "en-GB")]
    pub language: String,
    /// A file to share with it (repeatable), e.g. --file worksheet.pdf --file notes.docx
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// What it is based on (repeatable): an entry id (or its first characters) or a web
    /// address, e.g. --based-on 3fa1c2 --based-on https://example.org/lesson
    #[arg(long = "based-on", value_name = "SOURCE")]
    pub based_on: Vec<String>,
    /// Description (markdown)
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Subcommand)]
pub enum EnquiryCommand {
    /// Start an enquiry: the question your group will investigate
    Start(EnquiryArgs),
    /// Add a note to an enquiry (the network is the enquiry's)
    Note(NoteArgs),
}

#[derive(Args)]
pub struct EnquiryArgs {
    #[command(flatten)]
    pub target: Target,
    /// The enquiry's question, e.g. "Does retrieval practice help Year 9 recall?"
    #[arg(long)]
    pub question: String,
    /// Description (markdown); empty if not given
    #[arg(long, value_name = "FILE", conflicts_with = "description")]
    pub description_file: Option<PathBuf>,
    /// Description (markdown), given inline
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Args)]
pub struct NoteArgs {
    /// The enquiry's entry id, or its first characters (at least 4)
    pub enquiry: String,
    /// question, context, action, evidence or reflection
    #[arg(long)]
    pub stage: Stage,
    /// Publish as an edit of this earlier note of yours
    #[arg(long, value_name = "ENTRY_ID")]
    pub edits: Option<String>,
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Args)]
pub struct CommentArgs {
    /// The id of the entry you comment on, or its first characters (at least 4)
    pub on: String,
    /// Publish as an edit of this earlier comment of yours
    #[arg(long, value_name = "ENTRY_ID")]
    pub edits: Option<String>,
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// Notes of this enquiry
    #[arg(long)]
    pub enquiry: Option<String>,
    /// Comments on this entry
    #[arg(long)]
    pub comments_on: Option<String>,
    /// Also list earlier versions of edited entries
    #[arg(long)]
    pub all_versions: bool,
    #[command(flatten)]
    pub filters: Filters,
    /// At most this many entries (1–1000)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Skip this many entries first (the next page: what the "more" line says)
    #[arg(long, default_value_t = 0)]
    pub offset: u16,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Words to find (all of them; "…" for a phrase, -word to leave out); none lists
    /// everything the filters allow, newest first
    pub words: Vec<String>,
    #[command(flatten)]
    pub scope: Scope,
    #[command(flatten)]
    pub filters: Filters,
    /// At most this many results (1–1000)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Skip this many results first (the next page: what the "more" line says)
    #[arg(long, default_value_t = 0)]
    pub offset: u16,
}

/// Where and whose: what `list` and `search` narrow by first.
#[derive(Args)]
pub struct Scope {
    /// Network id (or its first characters) or local name
    #[arg(long, short)]
    pub network: Option<String>,
    /// blog_post (or post), resource, enquiry, enquiry_note (or note) or comment
    #[arg(long, value_parser = kind_arg)]
    pub kind: Option<EntryKind>,
    /// Author key (hex, or its first characters), or "me"
    #[arg(long)]
    pub author: Option<String>,
}

/// Filters `list` and `search` share. Values match whatever their case.
#[derive(Args, Default)]
pub struct Filters {
    /// Only blog posts with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Only resources for this subject
    #[arg(long)]
    pub subject: Option<String>,
    /// Only resources for this key stage (or level), e.g. KS2
    #[arg(long)]
    pub key_stage: Option<String>,
    /// Only resources under this licence, e.g. CC-BY-4.0
    #[arg(long)]
    pub licence: Option<String>,
    /// Only authors whose name contains this
    #[arg(long, value_name = "NAME")]
    pub author_name: Option<String>,
    /// Written on or after this day (YYYY-MM-DD, local time) or time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Written before this day (YYYY-MM-DD: the day itself is left out) or time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
}

impl Filters {
    /// Whether any filter only the search index can apply is set.
    pub fn any(&self) -> bool {
        self.tag.is_some()
            || self.subject.is_some()
            || self.key_stage.is_some()
            || self.licence.is_some()
            || self.author_name.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }
}

/// An API address: an IP and port, or `localhost:PORT` (loopback, without asking DNS).
fn api_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{port:?} is not a port number (0 to 65535)"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("{text:?} is not an address: give an IP and a port, e.g. 127.0.0.1:4041 or localhost:4041")
    })
}

/// A kind as teachers write it: its name, or what they call it (`post`, `note`, a plural).
fn kind_arg(text: &str) -> Result<EntryKind, String> {
    let lower = text.trim().to_ascii_lowercase();
    let name = match lower.as_str() {
        "post" | "posts" | "blog" | "blogs" | "blog_posts" => "blog_post",
        "note" | "notes" | "enquiry_notes" => "enquiry_note",
        "resources" => "resource",
        "enquiries" => "enquiry",
        "comments" => "comment",
        other => other,
    };
    name.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every command, and every command, says what it is for.
    #[test]
    fn every_command_and_argument_has_help() {
        use clap::CommandFactory;
        fn missing(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " staffroom" {
                out.push(path.clone());
            }
            for arg in cmd.get_arguments() {
                let generated = matches!(arg.get_id().as_str(), "help" | "version");
                if !generated && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    out.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                missing(sub, &path, out);
            }
        }
        let mut out = Vec::new();
        missing(&Cli::command(), "", &mut out);
        assert!(out.is_empty(), "without help text: {out:#?}");
    }

    #[test]
    fn api_addresses_take_localhost() {
        assert_eq!(
            api_addr("localhost:4041"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 4041)))
        );
        assert_eq!(api_addr("[::1]:9"), Ok("[::1]:9".parse().unwrap()));
        assert!(api_addr("localhost:99999")
            .unwrap_err()
            .contains("not a port"));
        assert!(api_addr("school.example:4041")
            .unwrap_err()
            .contains("e.g. 127.0.0.1:4041"));
    }

    #[test]
    fn kinds_are_taken_by_name_and_by_what_teachers_call_them() {
        assert_eq!(kind_arg("post"), Ok(EntryKind::BlogPost));
        assert_eq!(kind_arg("Posts"), Ok(EntryKind::BlogPost));
        assert_eq!(kind_arg("blog_post"), Ok(EntryKind::BlogPost));
        assert_eq!(kind_arg("blog-post"), Ok(EntryKind::BlogPost));
        assert_eq!(kind_arg("note"), Ok(EntryKind::EnquiryNote));
        assert_eq!(kind_arg("enquiries"), Ok(EntryKind::Enquiry));
        let err = kind_arg("poster").unwrap_err();
        assert!(err.contains("unknown kind \"poster\""), "{err}");
    }
}
