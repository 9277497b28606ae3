//! The bench process's open-file limit: every connection is a descriptor, so the soft
//! limit (often 1,024) is raised to the hard one at start, the figure reported, and an
//! EMFILE/ENFILE recognised as that limit rather than as a network failure.

use std::io;

use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde::Serialize;

/// The limit the bench runs with; `None` is unlimited.
#[derive(Debug, Clone, Serialize)]
pub struct OpenFiles {
    /// The soft limit in force after raising it.
    pub limit: Option<u64>,
    pub hard: Option<u64>,
    /// The soft limit the process started with.
    pub was: Option<u64>,
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; a refusal leaves it as it
/// was (and the report says which).
pub(crate) fn raise_open_files() -> OpenFiles {
    let before = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    let limit = if before.current != before.maximum && setrlimit(Resource::Nofile, raised).is_ok() {
        raised.current
    } else {
        before.current
    };
    OpenFiles {
        limit,
        hard: before.maximum,
        was: before.current,
    }
}

/// Whether `error` is a process (EMFILE) or system (ENFILE) open-file limit.
pub(crate) fn is_open_file_limit(error: &io::Error) -> bool {
    let raw = error.raw_os_error();
    raw == Some(Errno::MFILE.raw_os_error()) || raw == Some(Errno::NFILE.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_hard_one_after_raising() {
        let files = raise_open_files();
        assert_eq!(files.limit, files.hard);
        assert_eq!(getrlimit(Resource::Nofile).current, files.limit);
    }

    #[test]
    fn emfile_and_enfile_are_the_open_file_limit() {
        for errno in [Errno::MFILE, Errno::NFILE] {
            let error = io::Error::from_raw_os_error(errno.raw_os_error());
            assert!(is_open_file_limit(&error));
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(!is_open_file_limit(&refused));
    }
}
