//! The commands that work through a node's HTTP API: `raftmq node`, `raftmq user`,
//! `raftmq acl` and `raftmq ctl`, and how they find the node and its token.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Which node's API, and with which token. (Global: `raftmq ctl` takes them before or
/// after its subcommand.)
#[derive(Args, Debug, Clone)]
pub struct ApiTarget {
    /// host:port of the node's HTTP listener (--http-listen).
    #[arg(
        long,
        default_value = "127.0.0.1:8081",
        env = "RAFTMQ_HTTP",
        global = true
    )]
    pub http: String,
    /// The API token [default: the first line of --token-file].
    #[arg(long, env = "RAFTMQ_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the API token: a node makes `<data-dir>/api_token` on first start.
    #[arg(
        long,
        default_value = "./data/api_token",
        env = "RAFTMQ_API_TOKEN_FILE",
        global = true
    )]
    pub token_file: PathBuf,
}

/// `raftmq ctl`: the operator's API from the command line.
#[derive(Args, Debug)]
pub struct Ctl {
    #[command(subcommand)]
    pub command: CtlCommand,
    /// The node's JSON answer as it is, for scripts, instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiTarget,
}

/// Which page of a listing.
#[derive(Args, Debug, Clone, Copy)]
pub struct PageArgs {
    /// Page, from 1.
    #[arg(long)]
    pub page: Option<usize>,
    /// Items per page (at most 1000) [default: 100].
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Every member: role, term, leader, indexes, health, version, uptime.
    Nodes,
    /// The connected clients of the whole cluster.
    Clients {
        /// Only the clients of this node id.
        #[arg(long)]
        node: Option<u64>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        client_id_prefix: Option<String>,
        /// The client's IP address, or address:port.
        #[arg(long)]
        address: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One connected client: session, subscriptions, connection.
    Client { client_id: String },
    /// Disconnect a client wherever it is connected (5.0 reason 0x98); its session stays
    /// if it has an expiry.
    Kick { client_id: String },
    /// Every session, online and offline.
    Sessions {
        #[arg(long)]
        node: Option<u64>,
        #[arg(long)]
        client_id_prefix: Option<String>,
        /// Only online (true) or offline (false) sessions.
        #[arg(long)]
        connected: Option<bool>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One session, online or offline.
    Session { client_id: String },
    /// Remove a session (its client is disconnected if connected).
    SessionRemove { client_id: String },
    /// Subscriptions, of one client or matching one topic name.
    Subscriptions {
        #[arg(long, conflicts_with = "topic")]
        client: Option<String>,
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Retained messages matching a filter.
    Retained {
        #[arg(default_value = "#")]
        filter: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Clear the retained message of a topic.
    RetainedRemove { topic: String },
    /// Publish a message as the broker.
    Publish {
        topic: String,
        payload: String,
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
        qos: u8,
        #[arg(long)]
        retain: bool,
    },
    /// Build a snapshot on the node now.
    Snapshot,
    /// Move leadership away from the node (which must lead), to --to if given.
    Leader {
        #[arg(long)]
        to: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Take the node out of service without losing anything: its /health/ready answers
    /// 503 and it refuses new CONNECTs at once, and after its --drain-grace-ms it
    /// disconnects its clients (5.0 reason 0x8B) so they reconnect through the balancer.
    /// The node stays in the cluster; stop it or restart it afterwards.
    Drain {
        #[command(flatten)]
        api: ApiTarget,
    },
}

/// Users, for every node of the cluster at once (they are replicated state).
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from the first line of standard input unless
    /// --password is given (which leaves it in the shell's history).
    Add {
        username: String,
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// Change a user's password (read as for `add`).
    Passwd {
        username: String,
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        api: ApiTarget,
    },
    Remove {
        username: String,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// The users and the kind of their password hash.
    List {
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// Import a Mosquitto password file (`mosquitto_passwd` format, $6$ or $7$ hashes):
    /// its users keep their passwords, and get argon2id hashes at their next login.
    Import {
        file: PathBuf,
        #[command(flatten)]
        api: ApiTarget,
    },
}

/// The cluster's ACL rules.
#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// The rules this node applies: its file's, the cluster's, and the default.
    Show {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// Replace the cluster's rules with those of a TOML file (`[[rule]]` tables, the
    /// --acl-file format); they apply to connected clients at once.
    Set {
        file: PathBuf,
        #[command(flatten)]
        api: ApiTarget,
    },
}
