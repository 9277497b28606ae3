//! What a node runs with — command-line flags, `RAFTMQ_*` environment variables and a
//! TOML file (`--config raftmq.toml`), in that order of precedence over the defaults —
//! validated before anything starts; and the `cluster` and `bench` subcommands.
//!
//! The file's keys are the long flags' names with `_` for `-` (`mqtt_listen = "..."` for
//! `--mqtt-listen`), so `raftmq --help` documents the file too; `raftmq.toml` at the root
//! of the repository is a commented example. An unknown key or a value of the wrong type
//! stops the node with a message naming the key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use thiserror::Error;

use crate::broker::BrokerConfig;
use crate::cluster::node::NodeConfig;
use crate::cluster::proposer::ProposerConfig;
use crate::session::Limits;

mod api_commands;
mod limits;
mod listeners;
mod security;
pub use api_commands::{
    AclCommand, ApiTarget, Ctl, CtlCommand, NodeCommand, PageArgs, UserCommand,
};
pub use limits::LimitArgs;
pub use listeners::{Listen, ListenerArgs};
pub use security::{ClusterAccessArgs, ClusterSecretArgs, ClusterTlsArgs, SecurityArgs};

/// raftmq — an MQTT 3.1.1 / 5.0 broker cluster whose sessions survive the loss of any node.
///
/// Without a subcommand, runs a node. A fresh node with no `--join` makes itself a
/// one-voter cluster; others join it with `--join` or `raftmq cluster join`.
#[derive(Parser, Debug)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect and change the cluster through a running node.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Load generators that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Operate one node through its HTTP listener.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Manage the users clients log in as (through a node's HTTP API).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the cluster's ACL rules (through a node's HTTP API).
    #[command(subcommand)]
    Acl(AclCommand),
    /// Inspect and operate the cluster through a node's HTTP API: nodes, clients,
    /// sessions, subscriptions, retained messages, publish, snapshot, leadership.
    Ctl(Ctl),
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Role, term, leader, indexes, members and state digest of a node.
    Status {
        #[command(flatten)]
        target: NodeTarget,
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make the node at --node (fresh, started with --bootstrap=false) join the cluster
    /// that SEED (host:port of any member) belongs to.
    Join {
        seed: String,
        #[command(flatten)]
        target: NodeTarget,
    },
    /// Remove the node at --node from the cluster.
    Leave {
        #[command(flatten)]
        target: NodeTarget,
    },
}

#[derive(Args, Debug)]
pub struct NodeTarget {
    /// Cluster address (host:port) of the node to talk to.
    #[arg(long, default_value = "127.0.0.1:5370", env = "RAFTMQ_NODE")]
    pub node: String,
    #[command(flatten)]
    pub access: ClusterAccessArgs,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Committed commands per second and commit latency of the Raft log, on a 3-node
    /// loopback cluster that the bench starts itself (fsync on).
    Raft(crate::bench::raft::RaftBenchArgs),
    /// MQTT load against a running broker (raftmq or any other): `pub`, `sub`, `pubsub`
    /// and `conn`.
    #[command(flatten)]
    Mqtt(crate::bench::mqtt::Scenario),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the command line and configuration file could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Args(#[from] clap::Error),
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error(
        "{path}: unknown setting `{key}` (see `raftmq --help`; keys are the flags' names with _ for -)"
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error("{path}: `{key}` must be a string, an integer or a boolean")]
    ValueType { path: PathBuf, key: String },
}

impl Cli {
    /// Parses `args` (the program name first) and, for a node run with `--config`, fills
    /// every setting that neither a flag nor an environment variable gave from the file.
    pub fn load<I, T>(args: I) -> Result<Cli, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Cli::command().try_get_matches_from(&args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let Some(path) = cli.run.config.clone().filter(|_| cli.command.is_none()) else {
            return Ok(cli);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let table: toml::Table = text.parse().map_err(|source| LoadError::Toml {
            path: path.clone(),
            source,
        })?;
        let known: Vec<String> = Cli::command()
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .filter(|id| id != "config" && id != "help" && id != "version")
            .collect();
        let mut with_file = args.clone();
        for (key, value) in table {
            if !known.contains(&key) {
                return Err(LoadError::UnknownKey { path, key });
            }
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(LoadError::ValueType { path, key }),
            };
            let given = matches!(
                matches.value_source(&key),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if !given {
                with_file.push(format!("--{}={value}", key.replace('_', "-")).into());
            }
        }
        let matches = Cli::command().try_get_matches_from(&with_file)?;
        Ok(Cli::from_arg_matches(&matches)?)
    }
}

/// How to run a node.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// A TOML file with any of the settings below (keys: the flags' names with _ for -).
    /// Flags and environment variables override it.
    #[arg(long, env = "RAFTMQ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the node's store (Raft log, state, snapshots, node id).
    #[arg(long, default_value = "./data", env = "RAFTMQ_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the cluster gRPC server (node-to-node; never expose it to the internet).
    #[arg(long, default_value = "127.0.0.1:5370", env = "RAFTMQ_CLUSTER_LISTEN")]
    pub cluster_listen: SocketAddr,
    /// host:port other nodes use to reach this one [default: --cluster-listen].
    #[arg(long, env = "RAFTMQ_CLUSTER_ADVERTISE")]
    pub cluster_advertise: Option<String>,
    /// Address of the MQTT listener (plain TCP).
    #[arg(long, default_value = "0.0.0.0:1883", env = "RAFTMQ_MQTT_LISTEN")]
    pub mqtt_listen: SocketAddr,
    /// Largest MQTT packet a client may send, bytes (announced in v5 CONNACK).
    #[arg(long, default_value_t = 1_048_576, env = "RAFTMQ_MAX_PACKET_SIZE")]
    pub max_packet_size: u32,
    /// Unacknowledged QoS 1/2 publishes a client may have towards the broker (v5 Receive
    /// Maximum); more is answered with DISCONNECT 0x93.
    #[arg(long, default_value_t = 1024, env = "RAFTMQ_RECEIVE_MAXIMUM")]
    pub receive_maximum: u16,
    /// Outbound QoS 1/2 messages in flight per client (a v5 client's Receive Maximum may
    /// lower it).
    #[arg(long, default_value_t = 32, env = "RAFTMQ_MAX_INFLIGHT")]
    pub max_inflight: u16,
    /// Messages a session keeps waiting beyond its in-flight window (offline queue); past
    /// it the oldest waiting message is dropped and counted.
    #[arg(long, default_value_t = 1000, env = "RAFTMQ_MAX_QUEUED_MESSAGES")]
    pub max_queued_messages: u32,
    /// Longest keep-alive granted to a v5 client, seconds (announced as Server Keep Alive).
    #[arg(long, default_value_t = 65_535, env = "RAFTMQ_MAX_KEEP_ALIVE")]
    pub max_keep_alive: u16,
    /// Topic aliases a client may use towards the broker (0: none).
    #[arg(long, default_value_t = 64, env = "RAFTMQ_TOPIC_ALIAS_MAXIMUM")]
    pub topic_alias_maximum: u16,
    /// Join the cluster of this member (host:port) at start.
    #[arg(long, env = "RAFTMQ_JOIN")]
    pub join: Option<String>,
    /// A fresh node with no --join makes itself a one-voter cluster; --bootstrap=false
    /// waits for `raftmq cluster join` instead.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "RAFTMQ_BOOTSTRAP")]
    pub bootstrap: bool,
    /// Raft heartbeat interval, ms (must be under half the minimum election timeout).
    #[arg(long, default_value_t = 150, env = "RAFTMQ_RAFT_HEARTBEAT_MS")]
    pub raft_heartbeat_ms: u64,
    /// Raft election timeout, lower bound, ms.
    #[arg(long, default_value_t = 1000, env = "RAFTMQ_RAFT_ELECTION_MIN_MS")]
    pub raft_election_min_ms: u64,
    /// Raft election timeout, upper bound, ms.
    #[arg(long, default_value_t = 1500, env = "RAFTMQ_RAFT_ELECTION_MAX_MS")]
    pub raft_election_max_ms: u64,
    /// Build a snapshot and purge the log every this many entries.
    #[arg(long, default_value_t = 10_000, env = "RAFTMQ_SNAPSHOT_THRESHOLD")]
    pub snapshot_threshold: u64,
    /// The local IP address that connections to the other nodes leave from (default: the
    /// system's choice). For multi-homed hosts, and for fault-injection proxies that tell
    /// nodes apart by their source address.
    #[arg(long, env = "RAFTMQ_CLUSTER_SOURCE_IP")]
    pub cluster_source_ip: Option<std::net::IpAddr>,
    /// Never fsync the data directory: acknowledged writes live in the OS's page cache
    /// until it writes them back, so a crash of the machine loses them. For benchmarks and
    /// tests only (the Jepsen harness shows what it loses).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", env = "RAFTMQ_UNSAFE_NO_FSYNC")]
    pub unsafe_no_fsync: bool,
    /// How long a proposal waits for others to share its log entry while another entry
    /// of this node is being committed, µs (with none in flight it goes at once; 0: never).
    #[arg(long, default_value_t = 1000, env = "RAFTMQ_PROPOSAL_LINGER_US")]
    pub proposal_linger_us: u64,
    /// The most commands in one log entry.
    #[arg(long, default_value_t = 1024, env = "RAFTMQ_PROPOSAL_MAX_BATCH")]
    pub proposal_max_batch: usize,
    /// Publish this node's `$SYS/brokers/<node id>/...` topics every this many seconds
    /// (0: never).
    #[arg(long, default_value_t = 10, env = "RAFTMQ_SYS_INTERVAL")]
    pub sys_interval: u64,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "RAFTMQ_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub listeners: ListenerArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// A setting that cannot work, said plainly.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "--raft-heartbeat-ms ({heartbeat}) must be below half of --raft-election-min-ms ({election_min})"
    )]
    Heartbeat { heartbeat: u64, election_min: u64 },
    #[error("--raft-election-min-ms ({min}) must be below --raft-election-max-ms ({max})")]
    Election { min: u64, max: u64 },
    #[error("--snapshot-threshold must be at least 1")]
    SnapshotThreshold,
    #[error("--proposal-max-batch must be between 1 and 65536")]
    MaxBatch,
    #[error("--max-packet-size must be between 16 and 268435460 bytes")]
    MaxPacketSize,
    #[error("--receive-maximum and --max-inflight must be at least 1")]
    ZeroWindow,
    #[error(
        "--cluster-listen {0} is a wildcard address: set --cluster-advertise to the address peers should use"
    )]
    Advertise(SocketAddr),
    #[error("TLS needs both --tls-cert and --tls-key (and --tls-client-ca needs them too)")]
    TlsIncomplete,
    #[error("--ws-path `{0}` must start with /")]
    WsPath(String),
    #[error("ACL: {0}")]
    Acl(String),
    #[error("cluster secret: {0}")]
    ClusterSecret(String),
    #[error(
        "cluster TLS needs all of --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca (or none of them, and no --cluster-tls-server-name)"
    )]
    ClusterTlsIncomplete,
    #[error("cluster TLS: {0}")]
    ClusterTls(String),
}

impl RunArgs {
    /// Checks the MQTT settings and turns them into the broker's configuration.
    pub fn broker_config(&self) -> Result<BrokerConfig, ConfigError> {
        if !(16..=268_435_460).contains(&self.max_packet_size) {
            return Err(ConfigError::MaxPacketSize);
        }
        if self.receive_maximum == 0 || self.max_inflight == 0 {
            return Err(ConfigError::ZeroWindow);
        }
        let quick_start = self.config.is_none() && self.join.is_none();
        Ok(BrokerConfig {
            listeners: self.listeners.specs(self.mqtt_listen)?,
            tls: self.listeners.tls_files()?,
            auth: self.security.auth_config(quick_start),
            acl: self.security.acl()?,
            limits: Limits {
                max_packet_size: self.max_packet_size,
                receive_maximum: self.receive_maximum,
                max_inflight: self.max_inflight,
                max_queued_messages: self.max_queued_messages,
                max_queued_bytes: self.limits.max_queued_bytes,
                max_output_buffer: self.limits.max_output_buffer.max(1),
                max_subscriptions: self.limits.max_subscriptions,
                max_keep_alive: self.max_keep_alive,
                topic_alias_maximum: self.topic_alias_maximum,
                max_client_id_len: self.limits.max_client_id_len,
                max_topic_len: self.limits.max_topic_len,
                max_topic_levels: self.limits.max_topic_levels,
            },
            connections: self.limits.connection_limits(),
            sys_interval: (self.sys_interval > 0).then(|| Duration::from_secs(self.sys_interval)),
        })
    }

    /// Checks the settings and turns them into a node configuration.
    pub fn node_config(&self) -> Result<NodeConfig, ConfigError> {
        let (heartbeat, election_min, election_max) = (
            self.raft_heartbeat_ms,
            self.raft_election_min_ms,
            self.raft_election_max_ms,
        );
        if heartbeat == 0 || heartbeat * 2 >= election_min {
            return Err(ConfigError::Heartbeat {
                heartbeat,
                election_min,
            });
        }
        if election_min >= election_max {
            return Err(ConfigError::Election {
                min: election_min,
                max: election_max,
            });
        }
        if self.snapshot_threshold == 0 {
            return Err(ConfigError::SnapshotThreshold);
        }
        if self.proposal_max_batch == 0 || self.proposal_max_batch > 65_536 {
            return Err(ConfigError::MaxBatch);
        }
        let advertise = match &self.cluster_advertise {
            Some(addr) => addr.clone(),
            None if self.cluster_listen.ip().is_unspecified() => {
                return Err(ConfigError::Advertise(self.cluster_listen));
            }
            None => self.cluster_listen.to_string(),
        };
        Ok(NodeConfig {
            data_dir: self.data_dir.clone(),
            listen: self.cluster_listen,
            advertise,
            bootstrap: self.bootstrap,
            join: self.join.clone(),
            heartbeat: Duration::from_millis(heartbeat),
            election_min: Duration::from_millis(election_min),
            election_max: Duration::from_millis(election_max),
            snapshot_threshold: self.snapshot_threshold,
            proposer: ProposerConfig {
                linger: Duration::from_micros(self.proposal_linger_us),
                max_batch: self.proposal_max_batch,
                ..ProposerConfig::default()
            },
            source_ip: self.cluster_source_ip,
            access: self.security.cluster.access()?,
            unsafe_no_fsync: self.unsafe_no_fsync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with_file(file: &str, args: &[&str]) -> Result<RunArgs, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raftmq.toml");
        std::fs::write(&path, file).unwrap();
        let mut all = vec![
            "raftmq".to_string(),
            "--config".into(),
            path.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        Cli::load(all).map(|cli| cli.run)
    }

    #[test]
    fn the_file_fills_what_flags_do_not_give() {
        let run = load_with_file(
            "mqtt_listen = \"127.0.0.1:2883\"\nmax_inflight = 7\nbootstrap = false\n",
            &["--max-inflight", "9"],
        )
        .unwrap();
        assert_eq!(run.mqtt_listen, "127.0.0.1:2883".parse().unwrap());
        assert_eq!(run.max_inflight, 9, "the flag wins over the file");
        assert!(!run.bootstrap);
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_key() {
        let e = load_with_file("mqtt_lisen = \"x\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("mqtt_lisen"), "{e}");
        let e = load_with_file("max_inflight = [1]\n", &[]).unwrap_err();
        assert!(e.to_string().contains("max_inflight"), "{e}");
        let e = load_with_file("max_inflight = \"many\"\n", &[]).unwrap_err();
        assert!(matches!(e, LoadError::Args(_)), "{e}");
        assert!(load_with_file("not toml [", &[]).is_err());
    }

    #[test]
    fn unsafe_no_fsync_is_off_unless_asked_for() {
        assert!(!parse(&[]).node_config().unwrap().unsafe_no_fsync);
        assert!(
            parse(&["--unsafe-no-fsync"])
                .node_config()
                .unwrap()
                .unsafe_no_fsync
        );
        let file = load_with_file("unsafe_no_fsync = true\n", &[]).unwrap();
        assert!(file.node_config().unwrap().unsafe_no_fsync);
    }

    #[test]
    fn the_example_files_in_the_repository_are_valid() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut files = vec![format!("{root}/raftmq.toml")];
        files.extend((1..=3).map(|n| format!("{root}/deploy/cluster/node{n}.toml")));
        // The node files name /etc/raftmq/acl.toml: the repository's example stands in.
        let acl = format!("{root}/deploy/acl.toml");
        for path in files {
            let cli = Cli::load(["raftmq", "--config", path.as_str(), "--acl-file", &acl])
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            cli.run
                .node_config()
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let broker = cli
                .run
                .broker_config()
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!broker.listeners.is_empty(), "{path}");
        }
    }

    #[test]
    fn listeners_follow_their_flags() {
        let kinds = |args: &[&str]| -> Vec<crate::transport::Kind> {
            parse(args)
                .broker_config()
                .unwrap()
                .listeners
                .iter()
                .map(|l| l.kind)
                .collect()
        };
        use crate::transport::Kind::*;
        // Without a certificate the TLS kinds stay off.
        assert_eq!(kinds(&[]), [Tcp, Ws]);
        assert_eq!(kinds(&["--ws-listen", "off"]), [Tcp]);
        assert_eq!(
            kinds(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]),
            [Tcp, Tls, Ws, Wss]
        );
        assert_eq!(
            kinds(&[
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--wss-listen",
                "off"
            ]),
            [Tcp, Tls, Ws]
        );
        let proxied = parse(&[
            "--mqtt-proxy-protocol=true",
            "--proxy-trusted",
            "10.0.0.0/8",
        ])
        .broker_config()
        .unwrap();
        assert!(proxied.listeners[0].proxy.is_some());
        assert!(proxied.listeners[1].proxy.is_none());
        assert_eq!(
            parse(&["--tls-cert", "c.pem"]).broker_config().unwrap_err(),
            ConfigError::TlsIncomplete
        );
        assert_eq!(
            parse(&["--ws-path", "mqtt"]).broker_config().unwrap_err(),
            ConfigError::WsPath("mqtt".into())
        );
        let bad = Cli::try_parse_from(["raftmq", "--proxy-trusted", "10.0.0.0/40"]);
        assert!(bad.is_err(), "a bad network is refused at parse time");
    }

    fn parse(args: &[&str]) -> RunArgs {
        let mut all = vec!["raftmq"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().run
    }

    #[test]
    fn cluster_tls_takes_all_three_files_or_none() {
        let incomplete: [&[&str]; 3] = [
            &["--cluster-tls-cert", "c.pem"],
            &["--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem"],
            &["--cluster-tls-server-name", "node1"],
        ];
        for args in incomplete {
            assert_eq!(
                parse(args).node_config().unwrap_err(),
                ConfigError::ClusterTlsIncomplete,
                "{args:?}"
            );
        }
        let missing = parse(&[
            "--cluster-tls-cert",
            "/nonexistent/c.pem",
            "--cluster-tls-key",
            "k.pem",
            "--cluster-tls-ca",
            "ca.pem",
        ])
        .node_config()
        .unwrap_err();
        assert!(
            matches!(&missing, ConfigError::ClusterTls(m) if m.contains("/nonexistent/c.pem")),
            "{missing}"
        );
        assert!(parse(&[]).node_config().unwrap().access.tls.is_none());
    }

    #[test]
    fn defaults_make_a_valid_single_node() {
        let config = parse(&[]).node_config().unwrap();
        assert_eq!(config.advertise, "127.0.0.1:5370");
        assert!(config.bootstrap);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        assert_eq!(
            parse(&["--raft-heartbeat-ms", "600"])
                .node_config()
                .unwrap_err(),
            ConfigError::Heartbeat {
                heartbeat: 600,
                election_min: 1000
            }
        );
        assert_eq!(
            parse(&["--raft-election-max-ms", "900"])
                .node_config()
                .unwrap_err(),
            ConfigError::Election {
                min: 1000,
                max: 900
            }
        );
        assert!(matches!(
            parse(&["--cluster-listen", "0.0.0.0:5370"]).node_config(),
            Err(ConfigError::Advertise(_))
        ));
        assert!(Cli::try_parse_from(["raftmq", "--cluster-listen", "nonsense"]).is_err());
    }
}
