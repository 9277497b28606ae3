//! MQTT topic-filter matching, as the broker is supposed to do it (MQTT 5.0 §4.7), so the
//! queue checker can work out which subscribers a publish should have reached.
//!
//! `+` matches exactly one level (possibly empty), `#` (only as the last level) matches the
//! rest, including zero levels (`a/#` matches `a`), and a topic starting with `$` is not
//! matched by a filter starting with a wildcard. A shared subscription
//! `$share/<group>/<filter>` matches as `<filter>`. Invalid filters or topic names match
//! nothing.

/// Whether the topic name `topic` matches the topic filter `filter`.
pub fn matches(filter: &str, topic: &str) -> bool {
    let filter = unshare(filter);
    if !valid_filter(filter) || !valid_topic(topic) {
        return false;
    }
    let mut fs = filter.split('/');
    let mut ts = topic.split('/');
    let mut first = true;
    loop {
        match (fs.next(), ts.next()) {
            (Some("#"), _) => return !(first && topic.starts_with('$')),
            (Some("+"), Some(_)) => {
                if first && topic.starts_with('$') {
                    return false;
                }
            }
            (Some(f), Some(t)) => {
                if f != t {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

/// The filter inside a shared subscription, or the filter itself.
fn unshare(filter: &str) -> &str {
    match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) if !group.is_empty() => inner,
            // `$share/group` with no filter: leave it as is, and it will match nothing.
            _ => filter,
        },
        None => filter,
    }
}

fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == last,
        "+" => true,
        l => !l.contains('#') && !l.contains('+'),
    })
}

fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn exact_and_single_level() {
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/c"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(matches("a/+", "a/b"));
        assert!(matches("a/+", "a/"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(!matches("a/+", "a"));
        assert!(matches("+/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(matches("+/b/+", "x/b/y"));
    }

    #[test]
    fn multi_level_includes_the_parent() {
        assert!(matches("#", "a"));
        assert!(matches("#", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b"));
        assert!(matches("a/#", "a/b/c"));
        assert!(!matches("a/#", "b/a"));
        assert!(matches("a/+/#", "a/b"));
        assert!(!matches("a/+/#", "a"));
    }

    #[test]
    fn dollar_topics_need_a_literal_first_level() {
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(matches("$SYS/+", "$SYS/x"));
        assert!(matches("a/+", "a/$x"));
    }

    #[test]
    fn invalid_filters_and_topics_match_nothing() {
        assert!(!matches("a/#/b", "a/x/b"));
        assert!(!matches("a#", "a#"));
        assert!(!matches("a/b+", "a/b+"));
        assert!(!matches("", ""));
        assert!(!matches("#", ""));
        assert!(!matches("a/+", "a/+"));
    }

    #[test]
    fn shared_subscriptions_match_their_inner_filter() {
        assert!(matches("$share/g/q/#", "q/1"));
        assert!(!matches("$share/g/q/#", "r/1"));
        assert!(!matches("$share//q", "q"));
    }
}
