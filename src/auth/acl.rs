//! Access control lists: which client may publish to, subscribe to and receive from which
//! topics. Rules name a user, a client id and/or a source network, an action and topic
//! filters (with `%u` / `%c` standing for the username / client id); the first rule that
//! applies decides, and a configurable default decides when none does.
//!
//! Two lists are consulted, in order: the node's file (`--acl-file`, the same file on
//! every node, kept by configuration management) and the cluster's list (set through the
//! HTTP API, a command in the Raft log, so every node switches at the same entry). Both
//! live in an [`AclHandle`] that connections consult on every PUBLISH, SUBSCRIBE and
//! delivery, so a change applies to live sessions without reconnecting.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::mqtt::topic::{matches, parse_subscription_filter, validate_filter};
use crate::transport::proxy::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Allow,
    Deny,
}

/// What a rule is about. Subscribing and receiving are one right: a rule that denies
/// subscribing to `secret/#` also keeps `secret/...` messages from a subscription to `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Publish,
    Subscribe,
    All,
}

/// One rule as it is written (file, API) and stored (Raft log, state). Absent fields may
/// be left out of a file or request (`default`), but are never skipped when serialized:
/// the log's bincode is not self-describing, and a skipped field shifts the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    pub permission: Permission,
    pub action: RuleAction,
    /// Applies only to this authenticated user (absent: to anyone).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    /// Applies only to clients from this network (CIDR or address): the real address a
    /// PROXY header gave, when there is one.
    #[serde(default)]
    pub network: Option<String>,
    /// Topic filters, `%u` and `%c` substituted per client.
    pub topics: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AclError {
    #[error("rule {index}: {reason}")]
    Rule { index: usize, reason: String },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

/// A rule checked and ready to match.
#[derive(Debug, Clone)]
struct Compiled {
    rule: AclRule,
    network: Option<IpNet>,
}

/// Checks every rule (valid network, valid filters, at least one topic).
pub fn validate(rules: &[AclRule]) -> Result<(), AclError> {
    compile(rules).map(|_| ())
}

fn compile(rules: &[AclRule]) -> Result<Vec<Compiled>, AclError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let error = |reason: String| AclError::Rule { index, reason };
            if rule.topics.is_empty() {
                return Err(error("no topics".into()));
            }
            for topic in &rule.topics {
                // Placeholders stand for one level's worth of text.
                let probe = topic.replace("%u", "u").replace("%c", "c");
                validate_filter(&probe).map_err(|e| error(format!("topic {topic:?}: {e:?}")))?;
            }
            let network = rule
                .network
                .as_deref()
                .map(|net| {
                    net.parse::<IpNet>()
                        .map_err(|e| error(format!("network {net:?}: {e}")))
                })
                .transpose()?;
            Ok(Compiled {
                rule: rule.clone(),
                network,
            })
        })
        .collect()
}

/// The rules of an ACL file: TOML, one `[[rule]]` table per rule, in order.
pub fn parse_file(text: &str) -> Result<Vec<AclRule>, AclError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        rule: Vec<AclRule>,
    }
    let file: File = toml::from_str(text).map_err(|e| AclError::File {
        path: String::new(),
        reason: e.to_string(),
    })?;
    validate(&file.rule)?;
    Ok(file.rule)
}

pub fn read_file(path: &Path) -> Result<Vec<AclRule>, AclError> {
    let text = std::fs::read_to_string(path).map_err(|e| AclError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse_file(&text).map_err(|e| match e {
        AclError::File { reason, .. } => AclError::File {
            path: path.display().to_string(),
            reason,
        },
        other => other,
    })
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub username: Option<String>,
    pub client_id: String,
    pub addr: IpAddr,
}

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'t> {
    /// Publish to a topic name.
    Publish(&'t str),
    /// Subscribe with a filter (`$share/group/` allowed): every topic it can match must be
    /// within a rule's filter for that rule to apply.
    Subscribe(&'t str),
    /// Receive a message published to a topic name.
    Receive(&'t str),
}

/// Both lists and the default.
#[derive(Debug, Clone)]
pub struct RuleSet {
    local: Vec<Compiled>,
    cluster: Vec<Compiled>,
    default: Permission,
}

impl RuleSet {
    pub fn allows(&self, subject: &Subject, access: Access<'_>) -> bool {
        let decided = self
            .local
            .iter()
            .chain(&self.cluster)
            .find(|rule| applies(rule, subject, access));
        decided.map_or(self.default, |rule| rule.rule.permission) == Permission::Allow
    }

    pub fn cluster_rules(&self) -> Vec<AclRule> {
        self.cluster.iter().map(|c| c.rule.clone()).collect()
    }

    pub fn local_rules(&self) -> Vec<AclRule> {
        self.local.iter().map(|c| c.rule.clone()).collect()
    }

    pub fn default_permission(&self) -> Permission {
        self.default
    }
}

fn applies(compiled: &Compiled, subject: &Subject, access: Access<'_>) -> bool {
    let rule = &compiled.rule;
    let action_matches = matches!(
        (rule.action, access),
        (RuleAction::All, _)
            | (RuleAction::Publish, Access::Publish(_))
            | (
                RuleAction::Subscribe,
                Access::Subscribe(_) | Access::Receive(_)
            )
    );
    if !action_matches
        || rule
            .username
            .as_ref()
            .is_some_and(|u| subject.username.as_ref() != Some(u))
        || rule
            .client_id
            .as_ref()
            .is_some_and(|c| *c != subject.client_id)
        || compiled
            .network
            .as_ref()
            .is_some_and(|net| !net.contains(subject.addr))
    {
        return false;
    }
    rule.topics.iter().any(|pattern| {
        let Some(filter) = substitute(pattern, subject) else {
            return false;
        };
        match access {
            Access::Publish(topic) | Access::Receive(topic) => matches(&filter, topic),
            Access::Subscribe(asked) => parse_subscription_filter(asked)
                .is_ok_and(|parsed| covers(&filter, parsed.filter())),
        }
    })
}

/// The filter with `%u` and `%c` replaced; `None` when the rule cannot apply: no username,
/// or a name that would act as a wildcard or a level separator in the filter (a user
/// called `#` must not get everyone's topics).
fn substitute(pattern: &str, subject: &Subject) -> Option<String> {
    let safe = |s: &str| !s.is_empty() && !s.contains(['+', '#', '/']);
    let mut filter = pattern.to_string();
    if pattern.contains("%u") {
        let username = subject.username.as_deref().filter(|u| safe(u))?;
        filter = filter.replace("%u", username);
    }
    if pattern.contains("%c") {
        if !safe(&subject.client_id) {
            return None;
        }
        filter = filter.replace("%c", &subject.client_id);
    }
    Some(filter)
}

/// Whether every topic `inner` matches is matched by `outer` (both valid filters).
fn covers(outer: &str, inner: &str) -> bool {
    // A filter starting with a wildcard does not match `$` topics (§4.7.2), so it does not
    // cover a filter that can only match those.
    if inner.starts_with('$') && (outer.starts_with('+') || outer.starts_with('#')) {
        return false;
    }
    let mut outer_levels = outer.split('/');
    let mut inner_levels = inner.split('/');
    loop {
        match (outer_levels.next(), inner_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(o), Some(i)) if o == i && i != "+" && i != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The live rules: replaced as a whole, read without waiting on writers for longer than a
/// pointer swap.
#[derive(Debug, Clone)]
pub struct AclHandle(Arc<RwLock<Arc<RuleSet>>>);

impl AclHandle {
    /// The node's file rules (already validated) and the default; no cluster rules yet.
    pub fn new(local: &[AclRule], default: Permission) -> Result<Self, AclError> {
        Ok(AclHandle(Arc::new(RwLock::new(Arc::new(RuleSet {
            local: compile(local)?,
            cluster: Vec::new(),
            default,
        })))))
    }

    /// Anyone may do anything: for tests and tools that run a broker without access rules.
    pub fn allow_all() -> Self {
        AclHandle(Arc::new(RwLock::new(Arc::new(RuleSet {
            local: Vec::new(),
            cluster: Vec::new(),
            default: Permission::Allow,
        }))))
    }

    pub fn current(&self) -> Arc<RuleSet> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the cluster's list (from an applied command or an installed snapshot). The
    /// state only holds rules that were validated when proposed; one that no longer
    /// compiles is left out and logged rather than stop the node.
    pub fn set_cluster_rules(&self, rules: &[AclRule]) {
        let compiled = rules
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| match compile(std::slice::from_ref(rule)) {
                Ok(mut one) => one.pop(),
                Err(e) => {
                    tracing::error!("cluster ACL rule {index} ignored: {e}");
                    None
                }
            })
            .collect();
        let mut guard = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = (**guard).clone();
        next.cluster = compiled;
        *guard = Arc::new(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(permission: Permission, action: RuleAction, topics: &[&str]) -> AclRule {
        AclRule {
            permission,
            action,
            username: None,
            client_id: None,
            network: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn subject(username: Option<&str>, client_id: &str, addr: &str) -> Subject {
        Subject {
            username: username.map(str::to_string),
            client_id: client_id.into(),
            addr: addr.parse().unwrap(),
        }
    }

    use Permission::*;
    use RuleAction::*;

    #[test]
    fn the_first_rule_that_applies_decides() {
        let rules = vec![
            rule(Deny, Subscribe, &["secret/#"]),
            rule(Allow, All, &["#"]),
        ];
        let acl = AclHandle::new(&rules, Deny).unwrap().current();
        let who = subject(Some("alice"), "c1", "10.0.0.1");
        assert!(!acl.allows(&who, Access::Subscribe("secret/a")));
        assert!(!acl.allows(&who, Access::Subscribe("secret/#")));
        // `#` is not within `secret/#`: the deny rule does not decide the SUBSCRIBE, but it
        // does keep each secret message from being delivered on it.
        assert!(acl.allows(&who, Access::Subscribe("#")));
        assert!(!acl.allows(&who, Access::Receive("secret/x")));
        assert!(acl.allows(&who, Access::Receive("public/x")));
        assert!(
            acl.allows(&who, Access::Publish("secret/x")),
            "only subscribing is denied"
        );
    }

    #[test]
    fn the_default_decides_when_no_rule_applies() {
        let rules = vec![rule(Allow, Publish, &["open/#"])];
        let who = subject(None, "c", "127.0.0.1");
        let deny = AclHandle::new(&rules, Deny).unwrap().current();
        assert!(deny.allows(&who, Access::Publish("open/1")));
        assert!(!deny.allows(&who, Access::Publish("closed/1")));
        let allow = AclHandle::new(&rules, Allow).unwrap().current();
        assert!(allow.allows(&who, Access::Publish("closed/1")));
    }

    #[test]
    fn rules_name_users_clients_and_networks() {
        let mut by_user = rule(Allow, All, &["#"]);
        by_user.username = Some("alice".into());
        let mut by_client = rule(Allow, Publish, &["#"]);
        by_client.client_id = Some("gateway".into());
        let mut by_network = rule(Allow, Subscribe, &["#"]);
        by_network.network = Some("192.168.0.0/16".into());
        let acl = AclHandle::new(&[by_user, by_client, by_network], Deny)
            .unwrap()
            .current();
        assert!(acl.allows(
            &subject(Some("alice"), "x", "1.1.1.1"),
            Access::Publish("t")
        ));
        assert!(!acl.allows(&subject(Some("bob"), "x", "1.1.1.1"), Access::Publish("t")));
        assert!(!acl.allows(&subject(None, "x", "1.1.1.1"), Access::Publish("t")));
        assert!(acl.allows(&subject(None, "gateway", "1.1.1.1"), Access::Publish("t")));
        assert!(acl.allows(&subject(None, "x", "192.168.3.4"), Access::Subscribe("t")));
        assert!(acl.allows(
            &subject(None, "x", "::ffff:192.168.3.4"),
            Access::Receive("t")
        ));
        assert!(!acl.allows(&subject(None, "x", "192.169.3.4"), Access::Subscribe("t")));
    }

    #[test]
    fn placeholders_give_each_client_its_own_tree() {
        let rules = vec![rule(Allow, All, &["users/%u/#", "clients/%c/+"])];
        let acl = AclHandle::new(&rules, Deny).unwrap().current();
        let alice = subject(Some("alice"), "dev-1", "127.0.0.1");
        assert!(acl.allows(&alice, Access::Publish("users/alice/x/y")));
        assert!(!acl.allows(&alice, Access::Publish("users/bob/x")));
        assert!(acl.allows(&alice, Access::Subscribe("clients/dev-1/+")));
        assert!(!acl.allows(&alice, Access::Subscribe("clients/dev-2/a")));
        // No username: %u cannot apply. A name that is a wildcard or spans levels neither.
        assert!(!acl.allows(
            &subject(None, "c", "127.0.0.1"),
            Access::Publish("users//x")
        ));
        for sly in ["#", "+", "a/b"] {
            let who = subject(Some(sly), sly, "127.0.0.1");
            assert!(!acl.allows(&who, Access::Subscribe("users/#")), "{sly}");
            assert!(!acl.allows(&who, Access::Publish("clients/a/b")), "{sly}");
        }
    }

    #[test]
    fn a_subscription_must_lie_within_the_rule() {
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/b/#"));
        assert!(covers("a/+", "a/+"));
        assert!(covers("+/b", "x/b"));
        assert!(covers("#", "a/+/#"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/+/c", "a/b"));
        assert!(!covers("#", "$SYS/#"));
        assert!(covers("$SYS/#", "$SYS/broker/x"));
        let acl = AclHandle::new(&[rule(Allow, Subscribe, &["a/#"])], Deny)
            .unwrap()
            .current();
        let who = subject(None, "c", "127.0.0.1");
        assert!(acl.allows(&who, Access::Subscribe("$share/g/a/b")));
        assert!(!acl.allows(&who, Access::Subscribe("$share/g/b")));
    }

    #[test]
    fn files_are_toml_and_checked() {
        let text = r##"
            [[rule]]
            permission = "deny"
            action = "publish"
            network = "10.0.0.0/8"
            topics = ["#"]

            [[rule]]
            permission = "allow"
            action = "all"
            username = "alice"
            topics = ["users/%u/#"]
        "##;
        let rules = parse_file(text).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].username.as_deref(), Some("alice"));
        assert!(
            parse_file("[[rule]]\npermission = \"allow\"\naction = \"all\"\ntopics = []\n")
                .is_err()
        );
        assert!(
            parse_file("[[rule]]\npermission = \"maybe\"\naction = \"all\"\ntopics = [\"#\"]\n")
                .is_err()
        );
        assert!(
            parse_file(
                "[[rule]]\npermission = \"allow\"\naction = \"all\"\ntopics = [\"a/#/b\"]\n"
            )
            .is_err()
        );
        assert!(parse_file("[[rule]]\npermission = \"allow\"\naction = \"all\"\nnetwork = \"10.0.0.0/33\"\ntopics = [\"#\"]\n").is_err());
        assert!(parse_file("[[rule]]\npermision = \"allow\"\n").is_err());
        assert_eq!(parse_file("").unwrap(), Vec::new());
    }

    #[test]
    fn cluster_rules_are_swapped_live_after_the_file_rules() {
        let handle = AclHandle::new(&[rule(Allow, Publish, &["fixed"])], Deny).unwrap();
        let who = subject(None, "c", "127.0.0.1");
        let before = handle.current();
        handle.set_cluster_rules(&[
            rule(Deny, Publish, &["fixed"]),
            rule(Allow, Publish, &["new"]),
        ]);
        let after = handle.current();
        assert!(!before.allows(&who, Access::Publish("new")));
        assert!(after.allows(&who, Access::Publish("new")));
        assert!(
            after.allows(&who, Access::Publish("fixed")),
            "the file's rule comes first"
        );
        assert_eq!(after.cluster_rules().len(), 2);
    }
}
