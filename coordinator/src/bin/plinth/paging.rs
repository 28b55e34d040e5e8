//! Lists: the coordinator answers a list a page at a time (`limit` + `cursor`, see the README's
//! Paging). A list command reads page after page, following `next_cursor`, until it has every
//! item or the `--limit` asked for, and hands on one page of the API's shape
//! (`{items, total, next_cursor}`), whose `next_cursor` is where a `--cursor` continues.

use crate::client::Client;
use anyhow::Context;
use serde_json::{Value, json};
use std::future::Future;

/// The largest page the coordinator serves (`http::paging::MAX_LIMIT`).
const MAX_PAGE: u32 = 1000;

/// How much of a list to show.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct PageArgs {
    /// Show at most N items [default: all of them].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Start after the place a cursor names (the `more:` line a `--limit` printed).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

impl PageArgs {
    /// The first `n` items, for lists that are too long to show whole by default (the audit
    /// log).
    pub fn or_first(self, n: u32) -> PageArgs {
        PageArgs {
            limit: Some(self.limit.unwrap_or(n)),
            ..self
        }
    }
}

impl Client {
    /// `GET` a list with `query` (its filters), page by page, as `page` asks.
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        page: &PageArgs,
    ) -> anyhow::Result<Value> {
        collect(page, |limit, cursor| async move {
            let mut query = query.to_vec();
            query.push(("limit", limit.to_string()));
            query.extend(cursor.map(|c| ("cursor", c)));
            self.get_with(segments, &query).await
        })
        .await
    }
}

/// Reads pages with `fetch(limit, cursor)` until the list ends or `page.limit` items are in.
async fn collect<F, Fut>(page: &PageArgs, mut fetch: F) -> anyhow::Result<Value>
where
    F: FnMut(u32, Option<String>) -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    let want = page.limit.map_or(usize::MAX, |n| n as usize);
    let mut items: Vec<Value> = Vec::new();
    let mut cursor = page.cursor.clone().filter(|c| !c.is_empty());
    loop {
        let left = u32::try_from(want - items.len()).unwrap_or(MAX_PAGE);
        let answer = fetch(left.min(MAX_PAGE), cursor.take()).await?;
        let shape = "the coordinator's list response has an unexpected shape";
        let got = answer
            .get("items")
            .and_then(Value::as_array)
            .context(shape)?;
        let total = answer.get("total").cloned().context(shape)?;
        items.extend(got.iter().cloned());
        cursor = answer
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        // An empty page that claims more would loop forever: it ends the list too.
        if cursor.is_none() || got.is_empty() || items.len() >= want {
            return Ok(json!({ "items": items, "total": total, "next_cursor": cursor }));
        }
    }
}

/// The line under a list: how many of how many are shown, and where a `--cursor` goes on.
pub fn footer(shown: usize, total: u64, noun: &str, next: Option<&str>) -> String {
    let mut text = format!("{shown} of {total} {noun}\n");
    if let Some(next) = next {
        text.push_str(&format!("more: --cursor {next}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A list of `n` items served `limit` at a time, the cursor being the index to go on from.
    fn serve(n: usize, limit: u32, cursor: Option<String>) -> Value {
        let from: usize = cursor.map_or(0, |c| c.parse().expect("own cursor"));
        let to = (from + limit as usize).min(n);
        let next = (to < n).then(|| to.to_string());
        json!({ "items": (from..to).collect::<Vec<_>>(), "total": n, "next_cursor": next })
    }

    async fn run(n: usize, page: PageArgs) -> (Value, Vec<(u32, Option<String>)>) {
        let asked = RefCell::new(Vec::new());
        let fetch = |limit, cursor: Option<String>| {
            asked.borrow_mut().push((limit, cursor.clone()));
            let answer = serve(n, limit, cursor);
            async move { Ok(answer) }
        };
        let value = collect(&page, fetch).await.expect("collects");
        (value, asked.into_inner())
    }

    #[tokio::test]
    async fn lists_follow_the_cursor_to_the_end_or_the_limit() {
        let cases = [
            ("all, one page", 3, PageArgs::default(), 3, None, 1),
            ("all, three pages", 2500, PageArgs::default(), 2500, None, 3),
            (
                "a limit inside the first page",
                50,
                PageArgs {
                    limit: Some(20),
                    cursor: None,
                },
                20,
                Some("20"),
                1,
            ),
            (
                "a limit across pages",
                3000,
                PageArgs {
                    limit: Some(1500),
                    cursor: None,
                },
                1500,
                Some("1500"),
                2,
            ),
            (
                "from a cursor",
                30,
                PageArgs {
                    limit: None,
                    cursor: Some("25".into()),
                },
                5,
                None,
                1,
            ),
            ("an empty list", 0, PageArgs::default(), 0, None, 1),
        ];
        for (label, n, page, shown, next, calls) in cases {
            let (value, asked) = run(n, page.clone()).await;
            let items = value["items"].as_array().expect("items");
            assert_eq!(items.len(), shown, "{label}");
            assert_eq!(value["total"], n, "{label}");
            assert_eq!(value["next_cursor"].as_str(), next, "{label}");
            assert_eq!(asked.len(), calls, "{label}: {asked:?}");
            assert!(
                asked.iter().all(|(l, _)| (1..=MAX_PAGE).contains(l)),
                "{label}"
            );
            // Items come in order, none twice.
            let start = page.cursor.map_or(0, |c| c.parse().expect("number"));
            let want: Vec<Value> = (start..start + shown).map(Value::from).collect();
            assert_eq!(items, &want, "{label}");
        }
        // The last request asks only for what is still missing.
        let page = PageArgs {
            limit: Some(1500),
            cursor: None,
        };
        let (_, asked) = run(3000, page).await;
        assert_eq!(asked, vec![(1000, None), (500, Some("1000".into()))]);
    }

    #[test]
    fn the_footer_says_where_to_go_on() {
        assert_eq!(footer(2, 2, "hosts", None), "2 of 2 hosts\n");
        assert_eq!(
            footer(1, 5, "tenants", Some("c1.ab")),
            "1 of 5 tenants\nmore: --cursor c1.ab\n"
        );
    }
}
