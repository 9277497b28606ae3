//! `raftmq ctl ...`: the operator's API (`/api/v1/...`) from the command line, one call per
//! command, a table for people and the node's JSON as it is with `--json`.

use anyhow::Context;
use serde_json::{Value, json};

use super::cli::{api, segment};
use crate::config::{Ctl, CtlCommand, PageArgs};

/// A query string from the filters that are set (`?a=1&b=x`, or nothing).
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

fn paging(page: PageArgs) -> [(&'static str, Option<String>); 2] {
    [
        ("page", page.page.map(|p| p.to_string())),
        ("limit", page.limit.map(|l| l.to_string())),
    ]
}

/// A JSON value as a table cell: strings bare, null as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A page's rows, each made of these fields of its items, and the paging under them.
fn page_table(answer: &Value, columns: &[(&str, &str)]) -> String {
    let header: Vec<&str> = columns.iter().map(|(title, _)| *title).collect();
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| columns.iter().map(|(_, key)| cell(&item[*key])).collect())
        .collect();
    format!(
        "{}\n(page {} of {} items, {} per page)",
        table(&header, &rows),
        cell(&answer["page"]),
        cell(&answer["total"]),
        cell(&answer["limit"])
    )
}

fn nodes_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            if n["reachable"] == json!(false) {
                let mut row = vec![cell(&n["id"]), cell(&n["address"]), "unreachable".into()];
                row.resize(10, "-".into());
                return row;
            }
            let uptime = n["uptime_ms"]
                .as_u64()
                .map_or("-".into(), |ms| format!("{}s", ms / 1000));
            vec![
                cell(&n["id"]),
                cell(&n["address"]),
                cell(&n["role"]),
                cell(&n["term"]),
                cell(&n["leader"]),
                cell(&n["committed"]),
                cell(&n["applied"]),
                cell(&n["healthy"]),
                cell(&n["version"]),
                uptime,
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "ADDRESS",
            "ROLE",
            "TERM",
            "LEADER",
            "COMMITTED",
            "APPLIED",
            "HEALTHY",
            "VERSION",
            "UPTIME",
        ],
        &rows,
    )
}

/// One session or client: its fields, then its subscriptions.
fn detail(answer: &Value) -> String {
    let mut out = String::new();
    for key in [
        "client_id",
        "connected",
        "node",
        "protocol",
        "session_expiry",
        "expires_at",
        "in_flight",
        "queued",
        "queued_bytes",
        "dropped",
    ] {
        out.push_str(&format!("{key:<16}{}\n", cell(&answer[key])));
    }
    if let Some(connection) = answer["connection"].as_object() {
        for (key, value) in connection {
            out.push_str(&format!("{key:<16}{}\n", cell(value)));
        }
    }
    if let Some(will) = answer["will"].as_object() {
        out.push_str(&format!("{:<16}{}\n", "will", cell(&will["topic"])));
    }
    let subscriptions: Vec<Vec<String>> = answer["subscription_list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                cell(&s["filter"]),
                cell(&s["qos"]),
                cell(&s["subscription_id"]),
            ]
        })
        .collect();
    out.push_str("subscriptions\n");
    out.push_str(&table(&["FILTER", "QOS", "ID"], &subscriptions));
    out
}

/// The call a command makes: method, path and body.
fn request(command: &CtlCommand) -> (&'static str, String, Option<Value>) {
    match command {
        CtlCommand::Nodes => ("GET", "/api/v1/nodes".into(), None),
        CtlCommand::Clients {
            node,
            username,
            client_id_prefix,
            address,
            page,
        } => {
            let mut pairs = vec![
                ("node", node.map(|n| n.to_string())),
                ("username", username.clone()),
                ("client_id_prefix", client_id_prefix.clone()),
                ("address", address.clone()),
            ];
            pairs.extend(paging(*page));
            ("GET", format!("/api/v1/clients{}", query(&pairs)), None)
        }
        CtlCommand::Client { client_id } => (
            "GET",
            format!("/api/v1/clients/{}", segment(client_id)),
            None,
        ),
        CtlCommand::Kick { client_id } => (
            "DELETE",
            format!("/api/v1/clients/{}", segment(client_id)),
            None,
        ),
        CtlCommand::Sessions {
            node,
            client_id_prefix,
            connected,
            page,
        } => {
            let mut pairs = vec![
                ("node", node.map(|n| n.to_string())),
                ("client_id_prefix", client_id_prefix.clone()),
                ("connected", connected.map(|c| c.to_string())),
            ];
            pairs.extend(paging(*page));
            ("GET", format!("/api/v1/sessions{}", query(&pairs)), None)
        }
        CtlCommand::Session { client_id } => (
            "GET",
            format!("/api/v1/sessions/{}", segment(client_id)),
            None,
        ),
        CtlCommand::SessionRemove { client_id } => (
            "DELETE",
            format!("/api/v1/sessions/{}", segment(client_id)),
            None,
        ),
        CtlCommand::Subscriptions {
            client,
            topic,
            page,
        } => {
            let mut pairs = vec![("client_id", client.clone()), ("topic", topic.clone())];
            pairs.extend(paging(*page));
            (
                "GET",
                format!("/api/v1/subscriptions{}", query(&pairs)),
                None,
            )
        }
        CtlCommand::Retained { filter, page } => {
            let mut pairs = vec![("filter", Some(filter.clone()))];
            pairs.extend(paging(*page));
            ("GET", format!("/api/v1/retained{}", query(&pairs)), None)
        }
        CtlCommand::RetainedRemove { topic } => (
            "DELETE",
            format!(
                "/api/v1/retained/message{}",
                query(&[("topic", Some(topic.clone()))])
            ),
            None,
        ),
        CtlCommand::Publish {
            topic,
            payload,
            qos,
            retain,
        } => (
            "POST",
            "/api/v1/publish".into(),
            Some(json!({ "topic": topic, "payload": payload, "qos": qos, "retain": retain })),
        ),
        CtlCommand::Snapshot => ("POST", "/api/v1/cluster/snapshot".into(), None),
        CtlCommand::Leader { to } => (
            "POST",
            "/api/v1/cluster/leader".into(),
            Some(match to {
                Some(to) => json!({ "to": to }),
                None => json!({}),
            }),
        ),
    }
}

/// The answer for people.
fn human(command: &CtlCommand, answer: &Value) -> String {
    match command {
        CtlCommand::Nodes => nodes_table(answer),
        CtlCommand::Clients { .. } => page_table(
            answer,
            &[
                ("CLIENT_ID", "client_id"),
                ("NODE", "node"),
                ("ADDRESS", "address"),
                ("LISTENER", "listener"),
                ("PROTO", "protocol"),
                ("USERNAME", "username"),
                ("KEEPALIVE", "keep_alive"),
                ("SUBS", "subscriptions"),
                ("INFLIGHT", "in_flight"),
                ("QUEUED", "queued"),
            ],
        ),
        CtlCommand::Client { .. } | CtlCommand::Session { .. } => detail(answer),
        CtlCommand::Kick { client_id } => format!("client {client_id} disconnected"),
        CtlCommand::Sessions { .. } => page_table(
            answer,
            &[
                ("CLIENT_ID", "client_id"),
                ("CONNECTED", "connected"),
                ("NODE", "node"),
                ("EXPIRY", "session_expiry"),
                ("SUBS", "subscriptions"),
                ("INFLIGHT", "in_flight"),
                ("QUEUED", "queued"),
            ],
        ),
        CtlCommand::SessionRemove { client_id } => format!("session {client_id} removed"),
        CtlCommand::Subscriptions { .. } => page_table(
            answer,
            &[
                ("CLIENT_ID", "client_id"),
                ("FILTER", "filter"),
                ("QOS", "qos"),
                ("NO_LOCAL", "no_local"),
                ("SUB_ID", "subscription_id"),
            ],
        ),
        CtlCommand::Retained { .. } => {
            let mut shown = answer.clone();
            for item in shown["items"].as_array_mut().into_iter().flatten() {
                if item["payload"].is_null() {
                    item["payload"] = json!(format!("base64:{}", cell(&item["payload_base64"])));
                }
            }
            page_table(
                &shown,
                &[
                    ("TOPIC", "topic"),
                    ("QOS", "qos"),
                    ("SIZE", "size"),
                    ("PAYLOAD", "payload"),
                ],
            )
        }
        CtlCommand::RetainedRemove { topic } => format!("retained message of {topic} cleared"),
        CtlCommand::Publish { topic, qos, .. } => match answer["matched"].as_u64() {
            Some(matched) => {
                format!("published to {topic} at QoS {qos}: {matched} subscriptions matched")
            }
            None => format!("published to {topic} at QoS {qos}"),
        },
        CtlCommand::Snapshot => format!(
            "snapshot of node {} at index {}",
            cell(&answer["node"]),
            cell(&answer["snapshot_index"])
        ),
        CtlCommand::Leader { .. } => format!(
            "leadership moved to node {} (writes paused {} ms)",
            cell(&answer["leader"]),
            cell(&answer["paused_ms"])
        ),
    }
}

pub async fn run(ctl: Ctl) -> anyhow::Result<()> {
    let api = api(&ctl.api)?;
    let (method, path, body) = request(&ctl.command);
    let answer = match (method, body) {
        ("GET", _) => api.get(&path).await?,
        ("DELETE", _) => api.delete(&path).await?,
        (method, Some(body)) => api.send_json(method, &path, &body).await?,
        (_, None) => api.post(&path).await?,
    };
    if ctl.json {
        println!("{answer}");
        return Ok(());
    }
    let parsed: Value = serde_json::from_str(&answer).context("the node's answer")?;
    println!("{}", human(&ctl.command, &parsed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![
            vec!["a".to_string(), "long value".to_string()],
            vec!["longer".to_string(), "x".to_string()],
        ];
        assert_eq!(
            table(&["K", "V"], &rows),
            "K       V\na       long value\nlonger  x"
        );
    }

    #[test]
    fn filters_make_an_escaped_query() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(
            query(&[
                ("topic", Some("a/b c".into())),
                ("x", None),
                ("page", Some("2".into()))
            ]),
            "?topic=a%2Fb%20c&page=2"
        );
    }
}
