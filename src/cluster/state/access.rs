//! Applying `User` and `SetAcl`: the users and the cluster's ACL rules, kept in the state
//! so that every node authenticates and authorizes alike from the same log entry on.

use raftmq_storage::{StateReader, StoreError};

use super::Apply;
use super::tables::{ACL, ACL_KEY, USERS, UserRecord, decode};
use crate::auth::acl::AclRule;
use crate::cluster::command::{Outcome, UserChange};

impl Apply<'_, '_> {
    pub(super) fn change_users(&mut self, change: &UserChange) -> Result<Outcome, StoreError> {
        let count = match change {
            UserChange::Add { username, hash } => {
                if self.user(username)?.is_some() {
                    0
                } else {
                    self.put_user(username, hash)?;
                    1
                }
            }
            UserChange::SetPassword {
                username,
                hash,
                only_if,
            } => match self.user(username)? {
                Some(record) if only_if.as_ref().is_none_or(|old| *old == record.hash) => {
                    self.put_user(username, hash)?;
                    1
                }
                _ => 0,
            },
            UserChange::Import { users } => {
                for (username, hash) in users {
                    self.put_user(username, hash)?;
                }
                u32::try_from(users.len()).unwrap_or(u32::MAX)
            }
            UserChange::Remove { username } => {
                if self.user(username)?.is_some() {
                    self.remove(USERS, username.as_bytes());
                    1
                } else {
                    0
                }
            }
        };
        Ok(Outcome::UsersChanged { count })
    }

    fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get(USERS, username.as_bytes())
    }

    fn put_user(&mut self, username: &str, hash: &str) -> Result<(), StoreError> {
        self.put(
            USERS,
            username.as_bytes(),
            &UserRecord {
                hash: hash.to_string(),
            },
        )
    }

    pub(super) fn set_acl(&mut self, rules: &[AclRule]) -> Result<Outcome, StoreError> {
        self.put(ACL, ACL_KEY, &rules.to_vec())?;
        if let Some(acl) = self.acl {
            acl.set_cluster_rules(rules);
        }
        Ok(Outcome::AclSet)
    }
}

/// The cluster's ACL rules as stored (none before the first `SetAcl`).
pub(super) fn stored_rules(state: &StateReader) -> Result<Vec<AclRule>, StoreError> {
    state
        .get(ACL, ACL_KEY)?
        .map(|raw| decode(&raw))
        .transpose()
        .map(Option::unwrap_or_default)
}
