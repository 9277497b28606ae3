//! Topic names and topic filters: validation, shared-subscription parsing and matching.

use thiserror::Error;

/// The longest topic name or filter the protocol can carry (a two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The first level that marks a shared subscription (MQTT 5.0 §4.8.2).
const SHARE_PREFIX: &str = "$share";

/// Why a topic name or filter is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic is {0} bytes, longer than the 65535 allowed")]
    TooLong(usize),
    #[error("topic contains the null character U+0000")]
    NullCharacter,
    #[error("topic name contains a wildcard ('+' or '#')")]
    WildcardInName,
    #[error("'#' must be the last level of a topic filter and alone in it")]
    MisplacedMultiLevelWildcard,
    #[error("'+' must be alone in its level of a topic filter")]
    MisplacedSingleLevelWildcard,
    #[error("shared subscription has no share name after '$share/'")]
    MissingShareName,
    #[error("share name contains a wildcard ('+' or '#')")]
    InvalidShareName,
    #[error("shared subscription has no topic filter after its share name")]
    ShareWithoutFilter,
}

/// Checks a topic name as carried by PUBLISH: non-empty, at most 65,535 bytes, no U+0000,
/// no wildcard characters.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(name.len()));
    }
    if name.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a topic filter as carried by SUBSCRIBE and UNSUBSCRIBE, without any `$share/`
/// interpretation: `+` must fill a whole level, `#` must fill the last one.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_length_and_null(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

fn check_length_and_null(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(topic.len()));
    }
    if topic.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// A checked subscription filter, split into its share group (for `$share/{group}/{filter}`)
/// and the filter proper.
///
/// The fields are private so that every value has been through
/// [`parse_subscription_filter`]: the router relies on the filter being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionFilter<'a> {
    share_group: Option<&'a str>,
    filter: &'a str,
}

impl<'a> SubscriptionFilter<'a> {
    /// The share name of a shared subscription, `None` for an ordinary one.
    pub fn share_group(&self) -> Option<&'a str> {
        self.share_group
    }

    /// The filter that topics are matched against, with any `$share/{group}/` removed.
    pub fn filter(&self) -> &'a str {
        self.filter
    }
}

/// Parses a filter from SUBSCRIBE or UNSUBSCRIBE. A first level of exactly `$share` makes it
/// a shared subscription, which must go on with a share name and a valid filter; anything
/// else is an ordinary filter.
///
/// A bare `$share` is refused too, although 3.1.1 alone would take it as an ordinary filter:
/// a client that sends it meant a shared subscription and left out its parts.
pub fn parse_subscription_filter(s: &str) -> Result<SubscriptionFilter<'_>, TopicError> {
    check_length_and_null(s)?;
    let Some(after_prefix) = s.strip_prefix(SHARE_PREFIX) else {
        return ordinary(s);
    };
    let rest = match after_prefix.strip_prefix('/') {
        Some(rest) => rest,
        None if after_prefix.is_empty() => return Err(TopicError::MissingShareName),
        None => return ordinary(s),
    };
    let (group, filter) = rest.split_once('/').unwrap_or((rest, ""));
    if group.is_empty() {
        return Err(TopicError::MissingShareName);
    }
    if group.contains(['+', '#']) {
        return Err(TopicError::InvalidShareName);
    }
    if filter.is_empty() {
        return Err(TopicError::ShareWithoutFilter);
    }
    validate_filter(filter)?;
    Ok(SubscriptionFilter {
        share_group: Some(group),
        filter,
    })
}

fn ordinary(filter: &str) -> Result<SubscriptionFilter<'_>, TopicError> {
    validate_filter(filter)?;
    Ok(SubscriptionFilter {
        share_group: None,
        filter,
    })
}

/// Whether an ordinary filter (no `$share/` prefix) matches a topic name, level by level.
///
/// This is the plain reading of the spec, kept as the reference the router's trie is tested
/// against. A topic starting with `$` is reserved for the server, so a filter starting with
/// a wildcard does not match it (§4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    if topic.starts_with('$') && matches!(filter_levels.clone().next(), Some("+" | "#")) {
        return false;
    }
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topic_names() {
        assert_eq!(validate_topic_name("sport/tennis/player1"), Ok(()));
        assert_eq!(validate_topic_name("/"), Ok(()));
        assert_eq!(validate_topic_name("$SYS/monitor"), Ok(()));
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(
            validate_topic_name("sport/+"),
            Err(TopicError::WildcardInName)
        );
        assert_eq!(
            validate_topic_name("sport#"),
            Err(TopicError::WildcardInName)
        );
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_topic_name(&long),
            Err(TopicError::TooLong(MAX_TOPIC_LEN + 1))
        );
        assert_eq!(validate_topic_name(&long[1..]), Ok(()));
    }

    #[test]
    fn valid_filters() {
        for filter in [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "+/+",
            "/+",
            "/",
            "//",
            "$SYS/#",
            "$SYS/monitor/+",
            "sport/tennis/player1",
        ] {
            assert_eq!(validate_filter(filter), Ok(()), "{filter}");
        }
    }

    #[test]
    fn invalid_filters() {
        use TopicError::*;
        for (filter, error) in [
            ("", Empty),
            ("a\0/#", NullCharacter),
            ("sport/tennis#", MisplacedMultiLevelWildcard),
            ("sport/tennis/#/ranking", MisplacedMultiLevelWildcard),
            ("#/", MisplacedMultiLevelWildcard),
            ("##", MisplacedMultiLevelWildcard),
            ("sport+", MisplacedSingleLevelWildcard),
            ("sport/+tennis", MisplacedSingleLevelWildcard),
            ("++", MisplacedSingleLevelWildcard),
        ] {
            assert_eq!(validate_filter(filter), Err(error), "{filter}");
        }
        let long = "+/".repeat(MAX_TOPIC_LEN / 2 + 1);
        assert_eq!(validate_filter(&long), Err(TooLong(long.len())));
    }

    #[test]
    fn shared_subscriptions() {
        let shared = parse_subscription_filter("$share/consumer1/sport/tennis/+");
        assert_eq!(
            shared.map(|f| (f.share_group(), f.filter())),
            Ok((Some("consumer1"), "sport/tennis/+"))
        );
        let shared = parse_subscription_filter("$share/g/#");
        assert_eq!(
            shared.map(|f| (f.share_group(), f.filter())),
            Ok((Some("g"), "#"))
        );
        let shared = parse_subscription_filter("$share/g//");
        assert_eq!(
            shared.map(|f| (f.share_group(), f.filter())),
            Ok((Some("g"), "/"))
        );
    }

    #[test]
    fn ordinary_subscriptions() {
        for filter in [
            "sport/tennis/+",
            "$SYS/#",
            "$shared/x",
            "$sharex",
            "x/$share/g",
        ] {
            let parsed = parse_subscription_filter(filter);
            assert_eq!(
                parsed.map(|f| (f.share_group(), f.filter())),
                Ok((None, filter))
            );
        }
        assert_eq!(
            parse_subscription_filter("sport+"),
            Err(TopicError::MisplacedSingleLevelWildcard)
        );
    }

    #[test]
    fn invalid_shared_subscriptions() {
        use TopicError::*;
        for (filter, error) in [
            ("$share", MissingShareName),
            ("$share/", MissingShareName),
            ("$share//x", MissingShareName),
            ("$share/consumer1", ShareWithoutFilter),
            ("$share/consumer1/", ShareWithoutFilter),
            ("$share/a+b/x", InvalidShareName),
            ("$share/+/x", InvalidShareName),
            ("$share/a#/x", InvalidShareName),
            ("$share/g/sport/tennis#", MisplacedMultiLevelWildcard),
            ("$share/g/sport+", MisplacedSingleLevelWildcard),
            ("$share/g\0/x", NullCharacter),
            ("", Empty),
        ] {
            assert_eq!(parse_subscription_filter(filter), Err(error), "{filter}");
        }
    }

    #[test]
    fn multi_level_wildcard_matches_parent_and_descendants() {
        for topic in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
            "sport/tennis/player1/",
        ] {
            assert!(matches("sport/tennis/player1/#", topic), "{topic}");
        }
        assert!(!matches("sport/tennis/player1/#", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/player1/#", "sport/tennis"));
        assert!(matches("sport/#", "sport"));
        assert!(matches("#", "sport/tennis"));
        assert!(matches("#", "/"));
    }

    #[test]
    fn single_level_wildcard_matches_exactly_one_level() {
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+", "sport"));
        assert!(matches("+/tennis/#", "sport/tennis/player1"));
        assert!(matches("sport/+/player1", "sport/tennis/player1"));
    }

    #[test]
    fn empty_levels_are_levels() {
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("/finance", "/finance"));
        assert!(!matches("finance", "/finance"));
        assert!(matches("a//b", "a//b"));
        assert!(matches("a/+/b", "a//b"));
    }

    #[test]
    fn exact_filters_match_only_their_topic() {
        assert!(matches("sport/tennis", "sport/tennis"));
        assert!(!matches("sport/tennis", "sport/tennis/"));
        assert!(!matches("sport/tennis", "sport"));
        assert!(!matches("sport/tennis", "Sport/Tennis"));
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        assert!(!matches("#", "$SYS/monitor/Clients"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(!matches("+", "$SYS"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("+/$SYS", "a/$SYS"));
        assert!(matches("#", "a/$SYS"));
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("+".to_owned()),
            Just("#".to_owned()),
            Just("$share".to_owned()),
            "[a-c$+#\0]{1,3}",
        ]
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepts_only_valid_filters(s in "\\PC{0,24}") {
            if let Ok(parsed) = parse_subscription_filter(&s) {
                prop_assert_eq!(validate_filter(parsed.filter()), Ok(()));
            }
        }

        #[test]
        fn validation_follows_the_level_rules(levels in prop::collection::vec(level(), 1..6)) {
            let filter = levels.join("/");
            let last = levels.len() - 1;
            let valid = !filter.is_empty()
                && !filter.contains('\0')
                && levels.iter().enumerate().all(|(i, level)| {
                    (!level.contains('#') || (level == "#" && i == last))
                        && (!level.contains('+') || level == "+")
                });
            prop_assert_eq!(validate_filter(&filter).is_ok(), valid, "{:?}", filter);
        }

        #[test]
        fn a_topic_name_matches_itself(topic in "[a-c/$]{1,12}") {
            prop_assert_eq!(validate_topic_name(&topic), Ok(()));
            prop_assert_eq!(validate_filter(&topic), Ok(()));
            prop_assert!(matches(&topic, &topic));
        }
    }
}
