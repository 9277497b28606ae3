//! `GET /api/v1/openapi.json`: the API described in OpenAPI 3.0, hand-written in
//! `openapi.json` next to this file. Served without the token, like `/health/*`: it holds
//! no data of the node, and tools read it before they are given a token. The schemathesis
//! run in `tests/api` checks the real answers against it.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as compiled into the binary.
pub(super) const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(target)) => out.push(target),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_and_every_reference_resolves() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.0"))
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
        // Every operation answers with a documented status and, but for the open routes,
        // 401 with the error schema.
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                if method == "parameters" {
                    continue;
                }
                let responses = operation["responses"].as_object().expect("responses");
                let open = operation.get("security").is_some();
                assert_eq!(responses.contains_key("401"), !open, "{method} {path}");
            }
        }
    }
}
