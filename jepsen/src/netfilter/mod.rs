//! The `nftables` network mode's backend: the harness runs in a network namespace of its
//! own (`unshare --net`, so nothing on the host's network is touched) and cuts links
//! between nodes with nftables rules that drop packets, in one table it owns.
//!
//! Dropped, not reset: unlike the proxy, which holds bytes or resets connections, a cut
//! here is what a real network does to TCP — retransmissions, backoff, and timeouts. The
//! rules sit on the input hook, so a sender learns nothing from its own kernel (an output
//! drop can fail the send at once). Node `i` talks to the other nodes from and on
//! `127.0.0.(10+i)`, so a rule names a link by its source and destination address.
//!
//! The workspace forbids `unsafe` code, so no setns/unshare system calls: the harness
//! re-executes itself under util-linux's `unshare`, with [`IN_NAMESPACE`] naming the
//! namespace it leaves, and brings up `lo` (iproute2's `ip`); the rules are made with the
//! `nft` command.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::Context;

/// Set in a process the harness started inside its namespace, to the network namespace
/// the harness left (as `/proc/self/ns/net` names it: `net:[4026531833]`).
pub const IN_NAMESPACE: &str = "JEPSEN_NETNS";

/// The harness's table (family `ip`), and its one chain.
const TABLE: &str = "jepsen";
const CHAIN: &str = "cut";

/// Why the nftables mode cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("needs root (network namespaces and nftables), and the effective user id is {0}")]
    NotRoot(u32),
    #[error("the effective user id is unknown: {0}")]
    UnknownUser(String),
    #[error("`{command}` is not on the PATH (Debian package {package})")]
    Missing {
        command: &'static str,
        package: &'static str,
    },
}

/// The commands the mode runs, and their Debian packages.
const COMMANDS: [(&str, &str); 3] = [
    ("unshare", "util-linux"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
];

/// Why the nftables mode cannot run in this process, if it cannot: not root, or a command
/// missing.
pub fn unavailable() -> Option<Unavailable> {
    match effective_uid() {
        Ok(0) => {}
        Ok(uid) => return Some(Unavailable::NotRoot(uid)),
        Err(e) => return Some(Unavailable::UnknownUser(e)),
    }
    COMMANDS
        .iter()
        .find(|(command, _)| on_path(command).is_none())
        .map(|&(command, package)| Unavailable::Missing { command, package })
}

/// The effective user id, from `/proc/self/status` (`geteuid` would need `unsafe`).
fn effective_uid() -> Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| "no Uid line in /proc/self/status".to_owned())
}

fn on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
}

/// This process's network namespace, as `/proc/self/ns/net` names it.
fn network_namespace() -> anyhow::Result<String> {
    let link = std::fs::read_link("/proc/self/ns/net")
        .context("reading /proc/self/ns/net (this process's network namespace)")?;
    Ok(link.to_string_lossy().into_owned())
}

/// Whether this process runs inside the harness's namespace: [`IN_NAMESPACE`] names a
/// network namespace, and this process is in another one. A marker inherited by a
/// process back on the host names the host's namespace, so it cannot let the harness
/// change the host's network.
pub fn in_namespace() -> bool {
    let Some(left) = std::env::var_os(IN_NAMESPACE) else {
        return false;
    };
    let left = left.to_string_lossy();
    left.starts_with("net:[") && network_namespace().is_ok_and(|own| own != left)
}

/// Whether [`IN_NAMESPACE`] is set, rightly or not: a process that has it and is not
/// [`in_namespace`] must not start another namespace (that would recurse).
pub fn marked() -> bool {
    std::env::var_os(IN_NAMESPACE).is_some()
}

/// Runs `program args` in a new network namespace (with [`IN_NAMESPACE`] naming this
/// one) and waits for it. The namespace goes away with its last process; if this process
/// dies first, `unshare` kills the child.
pub fn run_in_namespace(program: &Path, args: &[OsString]) -> anyhow::Result<ExitStatus> {
    anyhow::ensure!(
        !marked(),
        "{IN_NAMESPACE} is set here already: not starting a namespace from a namespace"
    );
    Command::new("unshare")
        .args(["--net", "--kill-child", "--"])
        .arg(program)
        .args(args)
        .env(IN_NAMESPACE, network_namespace()?)
        .status()
        .context("running unshare --net")
}

/// Brings up `lo` in the namespace (a new namespace has it down): 127.0.0.0/8 is then
/// usable, every node address included.
pub fn loopback_up() -> anyhow::Result<()> {
    anyhow::ensure!(
        in_namespace(),
        "refusing to touch the host's loopback outside the harness's namespace"
    );
    run("ip", &["link", "set", "lo", "up"])
}

/// Runs a command; its stderr becomes the error.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{program} {}: {} ({})",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim(),
        output.status
    );
    Ok(())
}

/// The harness's nftables table in its namespace: a chain of drop rules, one per blocked
/// direction of a link. Dropping it deletes the table.
#[derive(Debug)]
pub struct Netfilter {
    _private: (),
}

impl Netfilter {
    /// Creates the table (replacing a leftover one), with no rules. Only inside the
    /// harness's namespace: outside it, this would change the host's firewall.
    pub fn create() -> anyhow::Result<Netfilter> {
        anyhow::ensure!(
            in_namespace(),
            "refusing to change the host's nftables outside the harness's namespace"
        );
        // `add` then `delete` removes a leftover table whether or not there is one.
        run("nft", &["add", "table", "ip", TABLE])?;
        run("nft", &["delete", "table", "ip", TABLE])?;
        run("nft", &["add", "table", "ip", TABLE])?;
        let chain = "{ type filter hook input priority 0; policy accept; }";
        run("nft", &["add", "chain", "ip", TABLE, CHAIN, chain])?;
        Ok(Netfilter { _private: () })
    }

    /// Drops every packet from `from` to `to` (one direction) until [`heal`](Self::heal).
    pub fn block(&self, from: Ipv4Addr, to: Ipv4Addr) -> anyhow::Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        run(
            "nft",
            &[
                "add", "rule", "ip", TABLE, CHAIN, "ip", "saddr", &from, "ip", "daddr", &to, "drop",
            ],
        )
    }

    /// Removes every rule: packets flow again (connections that survived resume).
    pub fn heal(&self) -> anyhow::Result<()> {
        run("nft", &["flush", "chain", "ip", TABLE, CHAIN])
    }
}

impl Drop for Netfilter {
    fn drop(&mut self) {
        let _ = run("nft", &["delete", "table", "ip", TABLE]);
    }
}

#[cfg(test)]
mod tests;
