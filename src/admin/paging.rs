//! Paged listings (`{items, total, page, limit}`) and the reading of query strings and JSON
//! bodies into typed values, with bad input answered as the API's JSON errors (axum's own
//! rejections are plain text).

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;

/// Items per page unless `limit` says otherwise, and the most a page may hold.
pub(super) const DEFAULT_LIMIT: usize = 100;
pub(super) const MAX_LIMIT: usize = 1000;

/// `page` (from 1) and `limit` of a listing's query. (Each query struct holds the two
/// fields itself: `serde(flatten)` loses their types in a query string.)
#[derive(Debug, Clone, Copy)]
pub(super) struct Paging {
    page: Option<usize>,
    limit: Option<usize>,
}

impl Paging {
    pub(super) fn new(page: Option<usize>, limit: Option<usize>) -> Self {
        Paging { page, limit }
    }

    /// The page of `items` asked for, with the total before paging.
    pub(super) fn page<T: Serialize>(self, items: Vec<T>) -> Result<Json<Value>, ApiError> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if page == 0 {
            return Err(ApiError::bad_request("bad_request", "page counts from 1"));
        }
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::bad_request(
                "bad_request",
                format!("limit is 1 to {MAX_LIMIT}"),
            ));
        }
        let total = items.len();
        let skip = (page - 1).saturating_mul(limit);
        let items: Vec<T> = items.into_iter().skip(skip).take(limit).collect();
        Ok(Json(
            json!({ "items": items, "total": total, "page": page, "limit": limit }),
        ))
    }
}

/// A query string as `T`, or 400 `bad_request` saying what is wrong with it.
pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|e| ApiError::bad_request("bad_request", e.body_text()))
}

/// A JSON body as `T`, or 400 `bad_request` saying what is wrong with it.
pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value)
        .map_err(|e| ApiError::bad_request("bad_request", e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(page: Option<usize>, limit: Option<usize>) -> Paging {
        Paging::new(page, limit)
    }

    #[test]
    fn a_page_holds_its_slice_and_the_total() {
        let Json(answer) = paging(Some(2), Some(3))
            .page((1..=8).collect::<Vec<u32>>())
            .expect("a valid page");
        assert_eq!(
            answer,
            json!({ "items": [4, 5, 6], "total": 8, "page": 2, "limit": 3 })
        );
        let Json(past) = paging(Some(9), Some(3))
            .page(vec![1, 2])
            .expect("a page past the end is empty");
        assert_eq!(past["items"], json!([]));
        let Json(defaults) = paging(None, None).page(vec![1]).expect("defaults");
        assert_eq!(
            (defaults["page"].clone(), defaults["limit"].clone()),
            (json!(1), json!(DEFAULT_LIMIT))
        );
    }

    #[test]
    fn page_zero_and_limits_out_of_range_are_refused() {
        for (page, limit) in [
            (Some(0), None),
            (None, Some(0)),
            (None, Some(MAX_LIMIT + 1)),
        ] {
            let refused = paging(page, limit).page(vec![1]).expect_err("refused");
            assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }
}
