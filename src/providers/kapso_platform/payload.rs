//! Parsing of the Platform API's phone number listing
//! (`GET https://api.kapso.ai/platform/v1/whatsapp/phone_numbers`):
//! `{"data":[{"phone_number_id":"…",…}],"meta":{"page","per_page","total_pages","total_count"}}`.
//! The health of each number is read by [`crate::providers::kapso::payload`].
//!
//! Read item by item: an item that is not an object or has no usable id is skipped and
//! noted; the rest are kept. Only the numbers' ids are used: their state comes from each
//! number's health, polled every interval.

use std::convert::Infallible;

use serde_json::Value;

use crate::json::{
    as_object, field, index, lenient_i64, load, opt_id, opt_str, present, wrong_type, Obj, Problems,
};
use crate::providers::kapso::path_safe;
pub use crate::providers::kapso::payload::PayloadError;

/// One page of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The usable phone number ids, in the page's order.
    pub ids: Vec<String>,
    pub next: Next,
}

/// Where the listing goes on.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The last page, or no paging the exporter can follow.
    End,
    /// Page-number paging: `meta.total_pages`.
    Pages(u64),
    /// Cursor paging, as Kapso's newer listings have: `paging.next`, a URL.
    Url(String),
    /// Cursor paging with only `paging.cursors.after`.
    After(String),
}

/// Parses a page of the listing.
///
/// Errors when the body is not an object with a `data` array (the listing's shape). An
/// unreadable `meta` or `paging` ends the listing at this page, noted.
pub fn parse_phone_numbers_page(
    body: &[u8],
    problems: &mut Problems,
) -> Result<Page, PayloadError> {
    let root = load(body)?;
    let data = present(&root, "data").ok_or_else(|| PayloadError::Missing {
        path: "data".into(),
    })?;
    let Value::Array(items) = data else {
        return Err(wrong_type("data", "array", data));
    };
    let ids = items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| problems.item(number_id(v, &index("data", i))))
        .collect();
    Ok(Page {
        ids,
        next: next(&root, problems),
    })
}

/// The id the health endpoint takes: `phone_number_id` (Meta's id), else `id`, which is
/// the same in the current API (in the legacy one `id` was Kapso's own UUID).
fn number_id(v: &Value, path: &str) -> Result<String, PayloadError> {
    let o = as_object(v, path)?;
    let id = match opt_id(o, path, "phone_number_id")?.filter(|id| !id.is_empty()) {
        Some(id) => Some(id),
        None => opt_id(o, path, "id")?.filter(|id| !id.is_empty()),
    }
    .ok_or_else(|| PayloadError::Missing {
        path: field(path, "phone_number_id"),
    })?;
    if !path_safe(&id) {
        return Err(PayloadError::Invalid {
            path: field(path, "phone_number_id"),
            reason: format!(
                "{:?} is not an id (letters, digits, '-' and '_')",
                crate::json::clip(&id)
            ),
        });
    }
    Ok(id)
}

fn next(root: &Obj, problems: &mut Problems) -> Next {
    if let Some(meta) = present(root, "meta") {
        let Some(meta) = problems.field(as_object::<Infallible>(meta, "meta").map(Some)) else {
            return Next::End;
        };
        match present(meta, "total_pages") {
            None => {}
            Some(v) => {
                return match lenient_i64(v).and_then(|n| u64::try_from(n).ok()) {
                    Some(pages) => Next::Pages(pages),
                    None => {
                        problems.ignore(wrong_type::<Infallible>(
                            "meta.total_pages",
                            "non-negative integer",
                            v,
                        ));
                        Next::End
                    }
                }
            }
        }
    }
    let Some(paging) = present(root, "paging") else {
        return Next::End;
    };
    let Some(paging) = problems.field(as_object::<Infallible>(paging, "paging").map(Some)) else {
        return Next::End;
    };
    if let Some(url) = problems.field(opt_str::<Infallible>(paging, "paging", "next")) {
        return Next::Url(url);
    }
    let after = match present(paging, "cursors") {
        Some(Value::Object(cursors)) => {
            problems.field(opt_str::<Infallible>(cursors, "paging.cursors", "after"))
        }
        Some(v) => {
            problems.ignore(wrong_type::<Infallible>("paging.cursors", "object", v));
            None
        }
        None => None,
    };
    after.map_or(Next::End, Next::After)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> (Result<Page, PayloadError>, Problems) {
        let mut problems = Problems::default();
        (
            parse_phone_numbers_page(body.as_bytes(), &mut problems),
            problems,
        )
    }

    #[test]
    fn published_listing() {
        let mut problems = Problems::default();
        let p = parse_phone_numbers_page(
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kapso/platform_phone_numbers.json"
            )),
            &mut problems,
        )
        .unwrap();
        assert_eq!(
            p,
            Page {
                ids: vec!["1234567890".into()],
                next: Next::Pages(1),
            }
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn items_without_a_usable_id_are_skipped_alone() {
        let (p, problems) = page(
            r#"{"data":[{"phone_number_id":"111","id":"111"},{"internal_id":"4a5b","name":"Pending"},{"id":222},7,{"phone_number_id":"../x"},{"phone_number_id":"","id":"333"},{"phone_number_id":["444"]}],"meta":{"page":1,"per_page":20,"total_pages":"3","total_count":42}}"#,
        );
        let p = p.unwrap();
        assert_eq!(p.ids, ["111", "222", "333"]);
        assert_eq!(p.next, Next::Pages(3));
        assert_eq!(problems.skipped(), 4);
        assert_eq!(
            problems.notes(),
            [
                "item skipped: missing required field `data[1].phone_number_id` (absent or null)",
                "item skipped: wrong type at `data[3]`: expected object, found number",
                r#"item skipped: invalid value at `data[4].phone_number_id`: "../x" is not an id (letters, digits, '-' and '_')"#,
                "item skipped: wrong type at `data[6].phone_number_id`: expected string or number, found array",
            ]
        );
    }

    #[test]
    fn paging_shapes() {
        let next = |tail: &str| {
            let (p, problems) = page(&format!(r#"{{"data":[]{tail}}}"#));
            (p.unwrap().next, problems.notes().to_vec())
        };
        assert_eq!(next(""), (Next::End, vec![]));
        assert_eq!(next(r#","meta":{"page":1}"#), (Next::End, vec![]));
        assert_eq!(
            next(r#","meta":{"total_pages":0}"#),
            (Next::Pages(0), vec![])
        );
        assert_eq!(
            next(r#","paging":{"next":"https://api.kapso.ai/x?after=b","cursors":{"after":"b"}}"#),
            (Next::Url("https://api.kapso.ai/x?after=b".into()), vec![])
        );
        assert_eq!(
            next(r#","paging":{"cursors":{"before":"a","after":"b"}}"#),
            (Next::After("b".into()), vec![])
        );
        assert_eq!(
            next(r#","meta":{"total_pages":-1}"#),
            (
                Next::End,
                vec!["ignored: wrong type at `meta.total_pages`: expected non-negative integer, found number".to_owned()]
            )
        );
        assert_eq!(
            next(r#","meta":[]"#),
            (
                Next::End,
                vec!["ignored: wrong type at `meta`: expected object, found array".to_owned()]
            )
        );
        assert_eq!(
            next(r#","paging":{"next":5}"#),
            (
                Next::End,
                vec![
                    "ignored: wrong type at `paging.next`: expected string, found number"
                        .to_owned()
                ]
            )
        );
    }

    #[test]
    fn not_a_listing() {
        assert_eq!(
            page(r#"{"error":"Invalid API key"}"#).0,
            Err(PayloadError::Missing {
                path: "data".into()
            })
        );
        assert_eq!(
            page(r#"{"data":{"phone_number_id":"1"}}"#).0,
            Err(crate::json::expected::wrong("data", "array", "object"))
        );
        assert_eq!(page("").0, Err(PayloadError::EmptyBody));
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        let body = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kapso/platform_phone_numbers.json"
        ));
        let mut problems = Problems::default();
        for end in 0..=body.len() {
            let _ = parse_phone_numbers_page(&body[..end], &mut problems);
        }
        let mut m = body.to_vec();
        for i in 0..m.len() {
            let saved = m[i];
            for replacement in [b'"', b'}', b'1', 0xff] {
                m[i] = replacement;
                let _ = parse_phone_numbers_page(&m, &mut problems);
            }
            m[i] = saved;
        }
    }
}
