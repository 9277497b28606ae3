//! `--topic` patterns: one pattern names every topic of a run, `%t` standing for the topic
//! number and `%i` for the publishing client's index (`%%` for a literal `%`).
//!
//! A subscriber wants every publisher of its topic, so in its filter `%i` becomes the
//! single-level wildcard `+`; a pattern whose `%i` is not a whole topic level therefore
//! cannot be subscribed to, and is refused for scenarios with subscribers.

use thiserror::Error;

use crate::mqtt::topic::{TopicError, validate_filter, validate_topic_name};

#[derive(Debug, Error)]
pub enum PatternError {
    #[error("--topic {pattern:?} gives no valid topic name ({source})")]
    TopicName { pattern: String, source: TopicError },
    #[error(
        "--topic {pattern:?} gives subscribers no valid filter ({source}); %i must be a whole topic level, as in bench/%i/%t"
    )]
    Filter { pattern: String, source: TopicError },
}

/// A checked `--topic` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicPattern {
    pattern: String,
}

impl TopicPattern {
    /// Checks that the pattern gives valid topic names, and, when `subscribed`, a valid
    /// filter.
    pub(crate) fn parse(pattern: &str, subscribed: bool) -> Result<TopicPattern, PatternError> {
        let checked = TopicPattern {
            pattern: pattern.to_string(),
        };
        validate_topic_name(&checked.topic(0, 0)).map_err(|source| PatternError::TopicName {
            pattern: pattern.to_string(),
            source,
        })?;
        if subscribed {
            validate_filter(&checked.filter(0)).map_err(|source| PatternError::Filter {
                pattern: pattern.to_string(),
                source,
            })?;
        }
        Ok(checked)
    }

    /// The topic publisher `client` sends topic number `topic` to.
    pub(crate) fn topic(&self, client: usize, topic: usize) -> String {
        self.substitute(&client.to_string(), topic)
    }

    /// The filter a subscriber of topic number `topic` subscribes with: every publisher's.
    pub(crate) fn filter(&self, topic: usize) -> String {
        self.substitute("+", topic)
    }

    fn substitute(&self, client: &str, topic: usize) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 8);
        let mut chars = self.pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('i') => out.push_str(client),
                Some('t') => out.push_str(&topic.to_string()),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_everywhere() {
        let p = TopicPattern::parse("bench/%i/%t/x%t", true).unwrap();
        assert_eq!(p.topic(12, 3), "bench/12/3/x3");
        assert_eq!(p.filter(3), "bench/+/3/x3");
    }

    #[test]
    fn a_pattern_without_placeholders_is_one_topic() {
        let p = TopicPattern::parse("plain/topic", true).unwrap();
        assert_eq!(p.topic(5, 9), "plain/topic");
        assert_eq!(p.filter(9), "plain/topic");
    }

    #[test]
    fn percent_escapes_and_unknown_placeholders_stay_literal() {
        let p = TopicPattern::parse("a%%b/%x/%", false).unwrap();
        assert_eq!(p.topic(1, 2), "a%b/%x/%");
    }

    #[test]
    fn a_client_index_inside_a_level_cannot_be_subscribed() {
        assert!(TopicPattern::parse("bench/c%i", false).is_ok());
        assert!(matches!(
            TopicPattern::parse("bench/c%i", true),
            Err(PatternError::Filter { .. })
        ));
    }

    #[test]
    fn wildcards_and_empty_patterns_are_refused() {
        for bad in ["bench/#", "bench/+/%t", ""] {
            assert!(
                matches!(
                    TopicPattern::parse(bad, false),
                    Err(PatternError::TopicName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
