//! A raftmq node process seen from outside: found among this test process's children by
//! its MQTT address, its resident memory, CPU time and open files read from `/proc`, its
//! open-file limit lowered with prlimit(2), its log, and its HTTP listener
//! (`/health/live`, `/clients`).

use std::path::Path;
use std::time::Duration;

use raftmq::local_cluster::LocalNode;
use rustix::process::{Pid, Resource, Rlimit, prlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::WAIT;

/// One running node process.
pub(crate) struct NodeProcess {
    pid: u32,
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces):
/// state, ppid, ... (`proc(5)`, fields 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

impl NodeProcess {
    /// The child of this process that runs `node` (its arguments name its MQTT address).
    pub(crate) fn of(node: &LocalNode) -> NodeProcess {
        let me = std::process::id().to_string();
        let entries = std::fs::read_dir("/proc").expect("read /proc");
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let serves_it = args
                .windows(2)
                .any(|w| w[0] == b"--mqtt-listen" && w[1] == node.mqtt_addr.as_bytes());
            let parent = stat_fields(pid).and_then(|f| f.get(1).cloned());
            if serves_it && parent.as_deref() == Some(me.as_str()) {
                return NodeProcess { pid };
            }
        }
        panic!("no child process serves MQTT on {}", node.mqtt_addr)
    }

    fn status_field(&self, name: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    }

    /// Resident memory (VmRSS) in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
            .unwrap_or_else(|| panic!("no VmRSS for node process {}", self.pid))
    }

    /// The most resident memory the process ever had (VmHWM) in KiB: a peak during an
    /// attack counts even if the memory was given back afterwards.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.status_field("VmHWM:")
            .unwrap_or_else(|| panic!("no VmHWM for node process {}", self.pid))
    }

    /// Resets the peak (VmHWM) to the current resident memory (`proc(5)`, clear_refs 5).
    pub(crate) fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5")
            .expect("reset the node's peak RSS");
    }

    /// User and system CPU time so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let fields = stat_fields(self.pid).expect("node process stat");
        // utime and stime are fields 14 and 15 of proc(5), 12 and 13 after the name.
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    /// Whether the process is still running (not exited, not a zombie).
    pub(crate) fn is_running(&self) -> bool {
        stat_fields(self.pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
    }

    pub(crate) fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    /// Sets both the soft and the hard RLIMIT_NOFILE of the running process.
    pub(crate) fn limit_open_files(&self, limit: u64) {
        let pid = Pid::from_raw(self.pid as i32).expect("a valid pid");
        let wanted = Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        prlimit(Some(pid), Resource::Nofile, wanted).expect("prlimit RLIMIT_NOFILE");
        let now = prlimit(Some(pid), Resource::Nofile, wanted).expect("read back RLIMIT_NOFILE");
        assert_eq!(now, wanted, "the node's open-file limit");
    }
}

/// How many lines of the log at `path` contain `needle`.
pub(crate) fn log_lines_with(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

/// The status and body of `GET path` on the HTTP listener at `addr`, or an error if it
/// does not answer within `within`.
pub(crate) async fn http_get(
    addr: &str,
    path: &str,
    within: Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    let answer = tokio::time::timeout(within, exchange)
        .await
        .map_err(|_| format!("{path} not answered within {within:?}"))?
        .map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{path}: no HTTP status in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

/// `/health/live` answers 200 within [`WAIT`].
pub(crate) async fn assert_live(http_addr: &str) {
    let answer = http_get(http_addr, "/health/live", WAIT).await;
    assert_eq!(
        answer.map(|(status, _)| status),
        Ok(200),
        "/health/live on {http_addr}"
    );
}

/// Whether the node's `GET /clients` (with its API token) lists `client_id`.
pub(crate) async fn lists_client(node: &LocalNode, client_id: &str) -> bool {
    let api = node.api().expect("the node's API token");
    let body = tokio::time::timeout(WAIT, api.get("/clients"))
        .await
        .unwrap_or_else(|_| panic!("/clients on {} not answered in time", node.http_addr))
        .unwrap_or_else(|e| panic!("/clients on {}: {e:#}", node.http_addr));
    body.contains(&format!("\"{client_id}\""))
}
