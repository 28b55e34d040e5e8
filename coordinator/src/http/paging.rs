//! The one paging scheme of every list: `limit` (how many items, 1 to [`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and an opaque `cursor` (the `next_cursor` the previous page answered).
//! A cursor names the last item of the page before by its sort key and id, never by position,
//! so a page is stable under inserts and deletes: nothing is skipped or shown twice when rows
//! come and go between two requests. Every page also answers `total`, the number of items
//! matching the filters in all.
//!
//! A list uses it in three steps: its query struct has `limit: Option<u32>` and
//! `cursor: Option<String>` fields; the handler turns them into a [`PageRequest`] with
//! [`request`]; the store reads up to `limit + 1` rows after `after` in the list's order
//! ([`PageRequest::fetch`], with `db::push_after` and `db::push_order`) and the handler cuts
//! the extra row off with [`PageRequest::finish`] (or [`PageRequest::finish_keyed`] when the
//! store answers each row's sort key beside it), which makes `next_cursor`.

use crate::http::error::{ApiError, ApiResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt::Display;
use std::str::FromStr;
use utoipa::IntoParams;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// The format version in every cursor: a cursor of an older scheme is refused, not misread.
const VERSION: &str = "c1";

/// The query of a list with no filters: only which page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items on the page, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page asked for of the list named `list` (see [`request`]).
    pub fn page<K: FromStr>(&self, list: &'static str) -> ApiResult<PageRequest<K>> {
        request(list, self.limit, self.cursor.as_deref())
    }
}

/// A validated page request for the list named `list`, whose order is by a key of type `K`
/// then by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    list: &'static str,
    pub limit: u32,
    /// The last item of the previous page: the page holds the items after it.
    pub after: Option<(K, String)>,
}

/// Checks `limit` and decodes `cursor` for the list named `list` (a cursor given out by another
/// list, or altered, is refused).
pub fn request<K: FromStr>(
    list: &'static str,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> ApiResult<PageRequest<K>> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("limit must be a whole number from 1 to {MAX_LIMIT}, got {limit}"),
        ));
    }
    let after = cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            decode(list, c).ok_or_else(|| {
                ApiError::field(
                    "cursor",
                    format!(
                        "cursor is not one this list of {list} gave out: pass the next_cursor of \
                         the previous page unchanged, or leave it out for the first page"
                    ),
                )
            })
        })
        .transpose()?;
    Ok(PageRequest { list, limit, after })
}

impl<K: Display> PageRequest<K> {
    /// How many rows the store reads: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> u32 {
        self.limit.saturating_add(1)
    }

    /// Cuts `items` (read in list order, at most [`Self::fetch`] of them) to the page and makes
    /// the cursor of the next page from the last item kept, when more follow. `key` gives an
    /// item's sort key and id.
    pub fn finish<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> (K, String),
    ) -> (Vec<T>, Option<String>) {
        if items.len() <= self.limit as usize {
            return (items, None);
        }
        items.truncate(self.limit as usize);
        let next = items.last().map(|last| {
            let (sort, id) = key(last);
            encode(self.list, &sort, &id)
        });
        (items, next)
    }

    /// [`Self::finish`] for rows the store read with their place in the list's order
    /// ((sort key, id), for a sort key the item does not show as stored).
    pub fn finish_keyed<T>(&self, rows: Vec<((K, String), T)>) -> (Vec<T>, Option<String>)
    where
        K: Clone,
    {
        let (rows, next) = self.finish(rows, |(key, _)| key.clone());
        (rows.into_iter().map(|(_, item)| item).collect(), next)
    }
}

fn encode(list: &str, sort: &impl Display, id: &str) -> String {
    let part = |text: &str| hex::encode(text);
    let body = format!(
        "{VERSION}.{}.{}.{}",
        part(list),
        part(&sort.to_string()),
        part(id)
    );
    let check = check(&body);
    format!("{body}.{check}")
}

/// A check on the rest of the cursor, so a cursor changed by hand or cut short in a copy is
/// refused rather than read as some other place. (It is no secret: a cursor made up to match
/// lists only what its caller may list anyway.)
fn check(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..6])
}

fn decode<K: FromStr>(list: &str, cursor: &str) -> Option<(K, String)> {
    if cursor.len() > 2048 {
        return None;
    }
    let (body, sum) = cursor.rsplit_once('.')?;
    if check(body) != sum {
        return None;
    }
    let part = |hexed: &str| String::from_utf8(hex::decode(hexed).ok()?).ok();
    let mut parts = body.split('.');
    if parts.next()? != VERSION || part(parts.next()?)? != list {
        return None;
    }
    let sort = part(parts.next()?)?.parse().ok()?;
    let id = part(parts.next()?)?;
    (parts.next().is_none() && !id.is_empty()).then_some((sort, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: u32, cursor: Option<&str>) -> PageRequest<i64> {
        request("things", Some(limit), cursor).expect("valid request")
    }

    #[test]
    fn a_cursor_leads_to_the_items_after_the_last_one_shown() {
        let rows: Vec<(i64, String)> = (0..5).map(|i| (100 - i, format!("t-{i}"))).collect();
        let first = page(2, None);
        assert_eq!(first.fetch(), 3);
        let (items, next) = first.finish(rows[..3].to_vec(), Clone::clone);
        assert_eq!(items, rows[..2]);
        let next = next.expect("more follow");
        let second = page(2, Some(&next));
        assert_eq!(second.after, Some((99, "t-1".to_string())));
        // The last page: no more rows than the limit, no cursor.
        let (items, next) = page(2, None).finish(rows[3..].to_vec(), Clone::clone);
        assert_eq!(items.len(), 2);
        assert_eq!(next, None);
    }

    #[test]
    fn ids_with_separators_survive_the_round_trip() {
        let p: PageRequest<String> = request("things", Some(1), None).expect("valid");
        let (_, next) = p.finish(vec!["a\nb".to_string(), "c".to_string()], |s: &String| {
            (s.clone(), "id\nwith\nlines".to_string())
        });
        let back: PageRequest<String> =
            request("things", Some(1), next.as_deref()).expect("own cursor");
        assert_eq!(
            back.after,
            Some(("a\nb".to_string(), "id\nwith\nlines".to_string()))
        );
    }

    #[test]
    fn bad_limits_and_foreign_or_altered_cursors_are_refused_by_name() {
        for limit in [0, MAX_LIMIT + 1] {
            let err = request::<i64>("things", Some(limit), None).expect_err("out of range");
            assert!(format!("{err:?}").contains("limit"), "{err:?}");
        }
        let (_, next) = page(1, None).finish(vec![(1, "a".into()), (2, "b".into())], Clone::clone);
        let next = next.expect("more follow");
        let foreign = request::<i64>("others", None, Some(&next)).expect_err("other list");
        assert!(format!("{foreign:?}").contains("cursor"), "{foreign:?}");
        let body = format!(
            "c1.{}.{}.{}",
            hex::encode("things"),
            hex::encode("x"),
            hex::encode("id")
        );
        let not_a_number = format!("{body}.{}", check(&body));
        // The same place with one character of the id changed, the check left as it was.
        let altered = next.replacen(&hex::encode("a"), &hex::encode("b"), 1);
        assert_ne!(altered, next);
        for bad in [
            "zz",
            "00",
            &next[..next.len() - 2],
            &not_a_number,
            &altered,
            &format!("{next}.00"),
        ] {
            assert!(request::<i64>("things", None, Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            page(5, Some("")).after,
            None,
            "an empty cursor is the first page"
        );
        assert_eq!(
            request::<i64>("things", None, None).expect("ok").limit,
            DEFAULT_LIMIT
        );
    }
}
