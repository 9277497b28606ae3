//! `raftmq node`, `raftmq user` and `raftmq acl`: each a call to a node's HTTP API, with
//! a table for people and `--json` for scripts.

use std::io::BufRead;

use anyhow::Context;
use serde_json::{Value, json};

use super::client::Api;
use crate::auth::acl;
use crate::config::{AclCommand, ApiTarget, NodeCommand, UserCommand};

/// The API of `target`, with its token from the flag, the environment or the token file.
pub(super) fn api(target: &ApiTarget) -> anyhow::Result<Api> {
    let token = match &target.token {
        Some(token) => token.clone(),
        None => std::fs::read_to_string(&target.token_file)
            .with_context(|| {
                format!(
                    "no --token given and the token file {} cannot be read",
                    target.token_file.display()
                )
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    Ok(Api::new(target.http.clone(), Some(token)))
}

/// A password from the flag, or the first line of standard input.
fn password(given: Option<String>) -> anyhow::Result<String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!password.is_empty(), "an empty password");
    Ok(password)
}

/// A path segment: everything but unreserved characters percent-encoded.
pub(super) fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn node(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Drain { api: target } => {
            println!("{}", api(&target)?.post("/drain").await?);
        }
    }
    Ok(())
}

pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            username,
            password: given,
            api: target,
        } => {
            let body = json!({ "username": username, "password": password(given)? });
            api(&target)?
                .send_json("POST", "/api/v1/users", &body)
                .await?;
            println!("user {username} added");
        }
        UserCommand::Passwd {
            username,
            password: given,
            api: target,
        } => {
            let body = json!({ "password": password(given)? });
            let path = format!("/api/v1/users/{}", segment(&username));
            api(&target)?.send_json("PUT", &path, &body).await?;
            println!("password of {username} changed");
        }
        UserCommand::Remove {
            username,
            api: target,
        } => {
            let path = format!("/api/v1/users/{}", segment(&username));
            api(&target)?.delete(&path).await?;
            println!("user {username} removed");
        }
        UserCommand::List { json, api: target } => {
            let body = api(&target)?.get("/api/v1/users").await?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let parsed: Value = serde_json::from_str(&body).context("the node's answer")?;
            println!("{:<32} HASH", "USERNAME");
            for user in parsed["users"].as_array().into_iter().flatten() {
                println!(
                    "{:<32} {}",
                    user["username"].as_str().unwrap_or("?"),
                    user["hash"].as_str().unwrap_or("?")
                );
            }
        }
        UserCommand::Import { file, api: target } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let body = api(&target)?
                .send_text("POST", "/api/v1/users/import", text)
                .await?;
            println!("{body}");
        }
    }
    Ok(())
}

pub async fn acl(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Show { json, api: target } => {
            let body = api(&target)?.get("/api/v1/acl").await?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let parsed: Value = serde_json::from_str(&body).context("the node's answer")?;
            for (title, key) in [("file rules", "file"), ("cluster rules", "cluster")] {
                println!("{title}:");
                for (i, rule) in parsed[key].as_array().into_iter().flatten().enumerate() {
                    println!("  {i:>3}  {}", describe(rule));
                }
            }
            println!("default: {}", parsed["default"].as_str().unwrap_or("?"));
        }
        AclCommand::Set { file, api: target } => {
            let rules = acl::read_file(&file)?;
            let body = api(&target)?
                .send_json("PUT", "/api/v1/acl", &json!({ "rules": rules }))
                .await?;
            println!("{body}");
        }
    }
    Ok(())
}

/// One rule on one line: `allow publish user=alice net=10.0.0.0/8 users/%u/#`.
fn describe(rule: &Value) -> String {
    let mut parts = vec![
        rule["permission"].as_str().unwrap_or("?").to_string(),
        rule["action"].as_str().unwrap_or("?").to_string(),
    ];
    for (key, label) in [
        ("username", "user"),
        ("client_id", "client"),
        ("network", "net"),
    ] {
        if let Some(value) = rule[key].as_str() {
            parts.push(format!("{label}={value}"));
        }
    }
    for topic in rule["topics"].as_array().into_iter().flatten() {
        parts.push(topic.as_str().unwrap_or("?").to_string());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(segment("alice"), "alice");
        assert_eq!(segment("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn rules_read_on_one_line() {
        let rule = json!({"permission": "allow", "action": "publish", "username": "alice",
            "network": "10.0.0.0/8", "topics": ["users/%u/#", "x"]});
        assert_eq!(
            describe(&rule),
            "allow publish user=alice net=10.0.0.0/8 users/%u/# x"
        );
    }
}
