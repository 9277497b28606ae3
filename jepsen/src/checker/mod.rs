//! Checkers: each reads a whole [`History`](crate::history::History) after the test and judges one property of it,
//! returning a [`Report`] — a [`Validity`] plus JSON details meant for a human (counts and a
//! few examples of every anomaly found).
//!
//! - [`queue()`]: every acknowledged publish reaches every subscriber it should (no loss),
//!   nothing arrives that was never published, and QoS 2 arrives exactly once.
//! - [`order()`]: each subscriber sees a publisher's messages on a topic in publish order.
//! - [`session()`]: `session_present` tells the truth, and a taken-over connection receives
//!   nothing published after the takeover.
//! - [`register()`]: retained messages behave as linearizable registers, one per topic.
//!
//! The three verdicts follow Jepsen: `Invalid` means an anomaly was proven; `Unknown` means
//! the checker could not decide (nothing to check, an op it could not read, a search that
//! hit its bound) and is never rounded up to `Valid`. Nemesis ops are ignored everywhere.

mod ops;
mod order;
mod queue;
mod register;
mod session;
pub mod topic;
mod wgl;

#[cfg(test)]
mod testkit;

use serde::Serialize;

pub use order::order;
pub use queue::queue;
pub use register::register;
pub use session::session;

/// A checker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// The property holds for this history.
    Valid,
    /// An anomaly was found; `details` shows it.
    Invalid,
    /// Could not decide: nothing to check, an unreadable op, or a search bound was hit.
    Unknown,
}

/// What one checker concluded about a history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The checker's name (`queue`, `order`, `session`, `register`).
    pub checker: String,
    pub valid: Validity,
    /// Counts and examples, for the person reading the results.
    pub details: serde_json::Value,
}

impl Report {
    pub(crate) fn new(checker: &str, valid: Validity, details: serde_json::Value) -> Report {
        Report {
            checker: checker.to_owned(),
            valid,
            details,
        }
    }
}

/// The verdict of several checkers together: `Invalid` if any is invalid, else `Unknown` if
/// any is unknown (or the list is empty), else `Valid`.
pub fn combine(reports: &[Report]) -> Validity {
    if reports.is_empty() {
        return Validity::Unknown;
    }
    if reports.iter().any(|r| r.valid == Validity::Invalid) {
        Validity::Invalid
    } else if reports.iter().any(|r| r.valid == Validity::Unknown) {
        Validity::Unknown
    } else {
        Validity::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(valid: Validity) -> Report {
        Report::new("x", valid, json!({}))
    }

    #[test]
    fn combine_takes_the_worst() {
        use Validity::*;
        assert_eq!(combine(&[]), Unknown);
        assert_eq!(combine(&[report(Valid), report(Valid)]), Valid);
        assert_eq!(combine(&[report(Valid), report(Unknown)]), Unknown);
        assert_eq!(
            combine(&[report(Unknown), report(Invalid), report(Valid)]),
            Invalid
        );
    }

    #[test]
    fn validity_serializes_lowercase() {
        let text = serde_json::to_string(&report(Validity::Invalid)).unwrap();
        assert!(text.contains(r#""valid":"invalid""#), "{text}");
        assert!(text.contains(r#""checker":"x""#), "{text}");
    }
}
