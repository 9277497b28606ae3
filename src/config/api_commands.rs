//! The commands that work through a node's HTTP API: `raftmq node`, `raftmq user` and
//! `raftmq acl`, and how they find the node and its token.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Which node's API, and with which token.
#[derive(Args, Debug, Clone)]
pub struct ApiTarget {
    /// host:port of the node's HTTP listener (--http-listen).
    #[arg(long, default_value = "127.0.0.1:8081", env = "RAFTMQ_HTTP")]
    pub http: String,
    /// The API token [default: the first line of --token-file].
    #[arg(long, env = "RAFTMQ_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the API token: a node makes `<data-dir>/api_token` on first start.
    #[arg(
        long,
        default_value = "./data/api_token",
        env = "RAFTMQ_API_TOKEN_FILE"
    )]
    pub token_file: PathBuf,
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
