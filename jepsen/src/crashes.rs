//! Node processes that died on their own. The nemesis kills, stops and restarts nodes,
//! but a node that exits without being told to (a panic, a data directory it cannot open
//! after a power loss, an error it gives up on) is a bug the test found, as in Jepsen:
//! the run is invalid whatever the workload's checker says. A crash shows only when the
//! harness next touches the process (a kill, a restart, the teardown), so each of those
//! reaps first and records what it finds, with the end of the node's log.

use std::fs;
use std::path::Path;
use std::process::ExitStatus;

use serde::Serialize;
use serde_json::json;

use crate::checker::{Report, Validity};

/// Lines of the node's log kept as evidence.
const LOG_TAIL_LINES: usize = 8;

/// One node process that exited by itself.
#[derive(Debug, Clone, Serialize)]
pub struct Crash {
    pub node: String,
    /// `exit status: 1`, `signal: 6 (SIGABRT)`, as the OS reported it.
    pub status: String,
    /// The error lines at the end of the node's log (its last lines if none says error).
    pub log_tail: Vec<String>,
}

impl Crash {
    pub fn new(node: String, status: ExitStatus, log: &Path) -> Crash {
        Crash {
            node,
            status: status.to_string(),
            log_tail: log_tail(log),
        }
    }
}

/// Whether the process ended in a way the harness did not cause: any exit but a clean
/// one (the harness itself only ever SIGKILLs, and reaps at once).
pub fn is_crash(status: ExitStatus) -> bool {
    !status.success()
}

/// What `log` says from its last `Error:` or panic on, up to a backtrace, or its
/// last lines if it says neither; escape codes removed.
fn log_tail(log: &Path) -> Vec<String> {
    let Ok(text) = fs::read(log) else {
        return Vec::new();
    };
    let lines: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(|l| strip_ansi(l).trim_end().to_string())
        .collect();
    let cause = lines
        .iter()
        .rposition(|l| l.starts_with("Error") || l.contains("panicked at"));
    let Some(from) = cause else {
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        return lines[from..].to_vec();
    };
    // anyhow numbers its causes as a backtrace numbers frames: stop at the backtrace.
    lines[from..]
        .iter()
        .take_while(|l| !l.trim().eq_ignore_ascii_case("stack backtrace:"))
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .take(LOG_TAIL_LINES)
        .cloned()
        .collect()
}

/// `tracing`'s colours out of a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `crashes` checker: invalid when any node died on its own.
pub fn report(crashes: &[Crash]) -> Report {
    Report {
        checker: "crashes".into(),
        valid: if crashes.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        },
        details: json!({"count": crashes.len(), "crashes": crashes}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_failed_exit_is_a_crash_with_its_error_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("n1.log");
        fs::write(
            &log,
            "\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m started\n\
             Error: starting the node\n\nCaused by:\n    0: Raft failed to start\n    1: I/O\n\
             \nStack backtrace:\n   0: ext_context\n             at /src/x.rs:1:1\n",
        )
        .unwrap();
        let status = Command::new("sh").args(["-c", "exit 1"]).status().unwrap();
        assert!(is_crash(status));
        let crash = Crash::new("n1".into(), status, &log);
        assert_eq!(crash.status, "exit status: 1");
        assert_eq!(
            crash.log_tail,
            [
                "Error: starting the node",
                "Caused by:",
                "    0: Raft failed to start",
                "    1: I/O"
            ]
        );
        let report = report(&[crash]);
        assert_eq!(report.valid, Validity::Invalid);
        assert_eq!(report.details["count"], 1);
    }

    #[test]
    fn a_panic_is_shown_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("n3.log");
        fs::write(
            &log,
            concat!(
                "2026 ERROR openraft::replication: RPCError\n",
                "thread 'tokio-rt-worker' panicked at src/cluster/node.rs:10:5:\n",
                "the log has a hole\n",
                "stack backtrace:\n",
                "   0: std::panicking::begin_panic\n",
                "note: run with `RUST_BACKTRACE=full` for a verbose backtrace.\n",
            ),
        )
        .unwrap();
        let status = Command::new("sh")
            .args(["-c", "exit 101"])
            .status()
            .unwrap();
        let crash = Crash::new("n3".into(), status, &log);
        assert_eq!(
            crash.log_tail,
            [
                "thread 'tokio-rt-worker' panicked at src/cluster/node.rs:10:5:",
                "the log has a hole"
            ]
        );
    }

    #[test]
    fn a_clean_exit_is_no_crash_and_no_crash_is_valid() {
        let status = Command::new("true").status().unwrap();
        assert!(!is_crash(status));
        assert_eq!(report(&[]).valid, Validity::Valid);
    }

    #[test]
    fn without_error_lines_the_last_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("n2.log");
        let text: String = (0..20).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, text).unwrap();
        let status = Command::new("sh")
            .args(["-c", "kill -9 $$"])
            .status()
            .unwrap();
        let crash = Crash::new("n2".into(), status, &log);
        assert_eq!(crash.log_tail.len(), LOG_TAIL_LINES);
        assert_eq!(crash.log_tail[LOG_TAIL_LINES - 1], "line 19");
        assert!(crash.status.contains("signal: 9"), "{}", crash.status);
    }
}
