//! The HTTP API's token and error answers: every route but `/health/*` answers 401 with
//! the JSON code "unauthorized" without the token or with a wrong one (`POST /drain` too,
//! which would otherwise take the node out of service); the token works as
//! `Authorization: Bearer` and as `X-API-Key`; and each documented error has its status and
//! stable code (409 user_exists, 404 user_not_found, 400 invalid_rule / invalid_username /
//! invalid_password_file), also through `raftmq user ...`.

use serde_json::Value;

use crate::http::{cli, cli_ok, json, request, token};
use crate::start_node;

/// Request headers, as (name, value) pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn the_api_needs_its_token_and_answers_errors_with_codes() {
    let cluster = start_node(&[]).await;
    let node = &cluster.nodes[0];
    let addr = node.http_addr.as_str();
    let token = token(node);
    let bearer = format!("Bearer {token}");
    let wrong = format!("Bearer {}x", token);

    let refused: [(&str, &str, Headers); 8] = [
        ("GET", "/api/v1/users", &[]),
        ("GET", "/api/v1/users", &[("Authorization", &wrong)]),
        (
            "GET",
            "/api/v1/users",
            &[("X-API-Key", "not-the-token-at-all")],
        ),
        // The token without the Bearer scheme is not a bearer token.
        ("GET", "/api/v1/users", &[("Authorization", &token)]),
        ("GET", "/clients", &[]),
        ("GET", "/clients", &[("Authorization", &wrong)]),
        ("POST", "/drain", &[]),
        ("POST", "/drain", &[("Authorization", &wrong)]),
    ];
    for (method, path, headers) in refused {
        let (status, body) = json(addr, method, path, headers, None).await;
        assert_eq!(
            (status, code(&body)),
            (401, "unauthorized"),
            "{method} {path} {headers:?}: {body}"
        );
    }
    for path in ["/api/v1/acl", "/api/v1/users/import"] {
        let method = if path.ends_with("import") {
            "POST"
        } else {
            "GET"
        };
        let (status, body) = json(addr, method, path, &[], None).await;
        assert_eq!((status, code(&body)), (401, "unauthorized"), "{path}");
    }
    // The node was not drained by the refused requests.
    let (status, ready) = json(addr, "GET", "/health/ready", &[], None).await;
    assert_eq!(status, 200, "{ready}");
    let (status, live) = json(addr, "GET", "/health/live", &[], None).await;
    assert_eq!(status, 200, "{live}");

    // The scheme is case-insensitive (RFC 9110 §11.1), as is the header's name.
    let lowercase = format!("bearer {token}");
    for auth in [
        ("Authorization", bearer.as_str()),
        ("authorization", &lowercase),
        ("X-API-Key", &token),
        ("x-api-key", &token),
    ] {
        let (status, body) = json(addr, "GET", "/api/v1/users", &[auth], None).await;
        assert_eq!(status, 200, "{auth:?}: {body}");
        assert!(body["users"].is_array(), "{body}");
        let (status, body) = json(addr, "GET", "/clients", &[auth], None).await;
        assert_eq!(status, 200, "{auth:?}: {body}");
    }

    let with_token = [("Authorization", bearer.as_str())];
    let alice = r#"{"username":"alice","password":"pw"}"#;
    let (status, body) = json(addr, "POST", "/api/v1/users", &with_token, Some(alice)).await;
    assert_eq!(status, 201, "{body}");
    let errors: [(&str, &str, &str, u16, &str); 6] = [
        ("POST", "/api/v1/users", alice, 409, "user_exists"),
        (
            "PUT",
            "/api/v1/users/nobody",
            r#"{"password":"x"}"#,
            404,
            "user_not_found",
        ),
        ("DELETE", "/api/v1/users/nobody", "", 404, "user_not_found"),
        (
            "POST",
            "/api/v1/users",
            r#"{"username":"","password":"pw"}"#,
            400,
            "invalid_username",
        ),
        (
            "PUT",
            "/api/v1/acl",
            r##"{"rules":[{"permission":"deny","action":"publish","topics":["a/#/b"]}]}"##,
            400,
            "invalid_rule",
        ),
        (
            "PUT",
            "/api/v1/acl",
            r##"{"rules":[{"permission":"deny","action":"all","network":"10.0.0.0/33","topics":["#"]}]}"##,
            400,
            "invalid_rule",
        ),
    ];
    for (method, path, body, expected_status, expected_code) in errors {
        let body = (!body.is_empty()).then_some(body);
        let (status, answer) = json(addr, method, path, &with_token, body).await;
        assert_eq!(
            (status, code(&answer)),
            (expected_status, expected_code),
            "{method} {path} {body:?}: {answer}"
        );
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, text) = request(
        addr,
        "POST",
        "/api/v1/users/import",
        &with_token,
        Some(("text/plain", "carol:plain-text-password\n")),
    )
    .await
    .expect("an answer");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        (status, code(&answer)),
        (400, "invalid_password_file"),
        "{answer}"
    );

    // The CLI says why it failed, with the code, and exits nonzero.
    let again = cli(node, &["user", "add", "alice", "--password", "pw"], None).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.contains("409") && stderr.contains("user_exists"),
        "{stderr}"
    );
    let run = tokio::process::Command::new(crate::broker_support::raftmq_binary())
        .args([
            "user",
            "list",
            "--http",
            addr,
            "--token",
            "0123456789abcdef-wrong",
        ])
        .env_remove("RAFTMQ_API_TOKEN_FILE")
        .kill_on_drop(true)
        .output();
    let unauthorized = tokio::time::timeout(crate::WAIT * 2, run)
        .await
        .expect("raftmq user list finished in time")
        .expect("run raftmq");
    let stderr = String::from_utf8_lossy(&unauthorized.stderr);
    assert!(
        !unauthorized.status.success() && stderr.contains("401"),
        "{stderr}"
    );
    // And the users are as the successful calls left them.
    let listed = cli_ok(node, &["user", "list", "--json"], None).await;
    assert!(
        listed.contains("\"alice\"") && !listed.contains("carol"),
        "{listed}"
    );
}
