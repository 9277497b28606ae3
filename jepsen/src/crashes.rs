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

/// The last error lines of `log`, or its last lines; escape codes removed.
fn log_tail(log: &Path) -> Vec<String> {
    let Ok(text) = fs::read(log) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<String> = text.lines().map(strip_ansi).collect();
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.starts_with("Error")
                || l.contains(" ERROR ")
                || l.contains("panicked")
                || l.trim_start().starts_with("Caused by")
                || l.starts_with("    ")
                    && !l.trim_start().starts_with("at ")
                    && !l
                        .trim_start()
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    let chosen: Vec<&String> = if errors.is_empty() {
        lines.iter().collect()
    } else {
        errors
    };
    let from = chosen.len().saturating_sub(LOG_TAIL_LINES);
    chosen[from..]
        .iter()
        .map(|l| l.trim_end().to_string())
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
             Error: starting the node\n\nCaused by:\n    Raft failed to start: I/O\n\
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
                "    Raft failed to start: I/O"
            ]
        );
        let report = report(&[crash]);
        assert_eq!(report.valid, Validity::Invalid);
        assert_eq!(report.details["count"], 1);
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
