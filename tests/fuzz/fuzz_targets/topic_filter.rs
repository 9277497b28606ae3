//! Fuzz target for topic syntax: arbitrary strings are validated as topic names and as
//! filters, parsed as (shared) subscriptions and matched, and the answers must agree with
//! one another and with a level-by-level reading of the spec written out here.
//!
//! The input is split at its first 0xff byte (which never occurs in UTF-8) into two parts,
//! each read as UTF-8 with invalid sequences replaced: the first is tried as a topic name,
//! a filter and a subscription; the second as a topic that the first is matched against,
//! and as a share name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raftmq::mqtt::topic::{
    MAX_TOPIC_LEN, TopicError, matches, parse_subscription_filter, validate_filter,
    validate_topic_name,
};

/// What `validate_filter` must answer, from the rules of §4.7.1 level by level.
fn spec_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    !filter.is_empty()
        && filter.len() <= MAX_TOPIC_LEN
        && !filter.contains('\0')
        && levels.iter().enumerate().all(|(i, level)| {
            (!level.contains('#') || (*level == "#" && i == last))
                && (!level.contains('+') || *level == "+")
        })
}

/// What `matches` must answer for a valid ordinary filter and a valid topic name (§4.7).
fn spec_matches(filter: &str, topic: &str) -> bool {
    let filter: Vec<&str> = filter.split('/').collect();
    let topic: Vec<&str> = topic.split('/').collect();
    if topic[0].starts_with('$') && (filter[0] == "+" || filter[0] == "#") {
        return false;
    }
    for (i, level) in filter.iter().enumerate() {
        match (*level, topic.get(i)) {
            // `#` also matches the parent level: "a/#" matches "a".
            ("#", _) => return true,
            (_, None) => return false,
            ("+", Some(_)) => {}
            (level, Some(t)) if level == *t => {}
            _ => return false,
        }
    }
    filter.len() == topic.len()
}

fn check_validation(s: &str) {
    let name = validate_topic_name(s);
    let filter = validate_filter(s);
    assert_eq!(
        filter.is_ok(),
        spec_filter(s),
        "validate_filter({s:?}) = {filter:?}"
    );
    assert_eq!(
        name.is_ok(),
        filter.is_ok() && !s.contains(['+', '#']),
        "{s:?}: a topic name must be exactly a filter without wildcards ({name:?}, {filter:?})"
    );
    if let (Err(name), Err(filter)) = (&name, &filter) {
        // The checks both make first (emptiness, length, U+0000) must fail the same way.
        if !matches!(name, TopicError::WildcardInName) {
            assert_eq!(name, filter, "{s:?}");
        }
    }
}

fn check_subscription(s: &str) {
    let shared = s == "$share" || s.starts_with("$share/");
    match parse_subscription_filter(s) {
        Ok(parsed) => {
            assert_eq!(validate_filter(parsed.filter()), Ok(()), "{s:?}");
            match parsed.share_group() {
                Some(group) => {
                    assert!(shared, "{s:?} parsed as shared");
                    assert!(
                        !group.is_empty() && !group.contains(['/', '+', '#']),
                        "{s:?}: share name {group:?}"
                    );
                    assert!(!parsed.filter().is_empty(), "{s:?}");
                    assert_eq!(format!("$share/{group}/{}", parsed.filter()), s);
                }
                None => {
                    assert!(!shared, "{s:?} parsed as ordinary");
                    assert_eq!(parsed.filter(), s);
                }
            }
        }
        Err(error) => {
            if !shared {
                assert_eq!(validate_filter(s), Err(error), "{s:?}");
            }
        }
    }
}

fn check_shared_construction(group: &str, filter: &str) {
    let s = format!("$share/{group}/{filter}");
    let parsed = parse_subscription_filter(&s);
    let group_ok = !group.is_empty() && !group.contains(['/', '+', '#', '\0']);
    if group_ok && validate_filter(filter).is_ok() && s.len() <= MAX_TOPIC_LEN {
        let parsed = parsed.unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(
            (parsed.share_group(), parsed.filter()),
            (Some(group), filter)
        );
    }
}

fn check_matching(filter: &str, topic: &str) {
    if validate_topic_name(topic).is_ok() {
        assert!(matches(topic, topic), "{topic:?} does not match itself");
    }
    if validate_filter(filter).is_err() || validate_topic_name(topic).is_err() {
        return;
    }
    let got = matches(filter, topic);
    assert_eq!(
        got,
        spec_matches(filter, topic),
        "matches({filter:?}, {topic:?})"
    );
    if !filter.contains(['+', '#']) {
        assert_eq!(got, filter == topic, "matches({filter:?}, {topic:?})");
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let first = String::from_utf8_lossy(first);
    let second = String::from_utf8_lossy(second);
    check_validation(&first);
    check_subscription(&first);
    check_shared_construction(&second, &first);
    check_matching(&first, &second);
});
