//! The `raftmq` command: parses the command line and runs what it names.

/// mimalloc rather than glibc's malloc: sled, prost and h2 allocate per key and per frame,
/// and the allocator was a quarter of a node's profile under load (README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use raftmq::config::{BenchCommand, Cli, ClusterCommand, Command, LoadError, LogFormat};

fn main() -> anyhow::Result<()> {
    let cli = match Cli::load(std::env::args_os()) {
        Ok(cli) => cli,
        Err(LoadError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("raftmq: {e}");
            std::process::exit(2);
        }
    };
    init_logging(cli.run.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            None => raftmq::run::node(&cli.run).await,
            Some(Command::Cluster(command)) => cluster(command).await,
            Some(Command::Bench(BenchCommand::Raft(args))) => raftmq::bench::raft::run(&args).await,
            Some(Command::Bench(BenchCommand::Mqtt(scenario))) => {
                raftmq::bench::mqtt::command(&scenario).await
            }
            Some(Command::Node(command)) => raftmq::admin::cli::node(command).await,
            Some(Command::User(command)) => raftmq::admin::cli::user(command).await,
            Some(Command::Acl(command)) => raftmq::admin::cli::acl(command).await,
            Some(Command::Ctl(ctl)) => raftmq::admin::ctl::run(ctl).await,
        }
    })
}

async fn cluster(command: ClusterCommand) -> anyhow::Result<()> {
    use raftmq::cluster::admin;
    match command {
        ClusterCommand::Status { target, json } => {
            let status = admin::status(&target.node, &target.access.access()?).await?;
            if json {
                println!("{}", admin::status_json(&status));
            } else {
                print!("{}", admin::format_status(&status));
            }
        }
        ClusterCommand::Join { seed, target } => {
            let members = admin::join(&target.node, &seed, &target.access.access()?).await?;
            println!("joined: {} members", members.len());
        }
        ClusterCommand::Leave { target } => {
            let members = admin::leave(&target.node, &target.access.access()?).await?;
            println!("left: {} members remain", members.len());
        }
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
