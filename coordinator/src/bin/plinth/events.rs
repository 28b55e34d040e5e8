//! `plinth events [--follow] [--type host]`: the region's change feed (`GET /v1/events`), one
//! line per state change.

use crate::output::print;
use crate::settings::Settings;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct EventsArgs {
    /// Keep waiting for new changes (Ctrl-C to stop); without it, print the backlog and end.
    #[arg(long, short)]
    follow: bool,
    /// Only these resource types (host, instance, image, baremetal, segment, eip, operation);
    /// repeat or separate with commas.
    #[arg(long = "type", value_delimiter = ',')]
    types: Vec<String>,
    /// Start after this event id instead of at the backlog's start (or, with --follow, now).
    #[arg(long)]
    after: Option<i64>,
}

/// One line for an event: id, time, type, resource, what changed.
fn line(event: &str, data: &Value, json: bool) -> String {
    if json {
        return format!("{data}\n");
    }
    if event == "reload" {
        return "(events were missed: the backlog no longer holds them; re-read what you need)\n"
            .to_string();
    }
    let at = data["at"]
        .as_i64()
        .and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        })
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let changed = data["data"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v.as_str() {
                    Some(s) => format!("{k}={s}"),
                    None => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!(
        "{:>8}  {at}  {:<9}  {}  {changed}\n",
        data["id"],
        event,
        data["resource_id"].as_str().unwrap_or("-")
    )
}

pub async fn run(settings: &Settings, json: bool, args: EventsArgs) -> anyhow::Result<()> {
    let tls = plinth_common::tls::client_config(&settings.ca_pem, None)
        .context("the region CA certificate is not usable")?;
    // No overall time limit: a followed feed stays open.
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .context("building the HTTPS client")?;
    let mut url = settings.url.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{} cannot be a base URL", settings.url))?
        .pop_if_empty()
        .extend(["v1", "events"]);
    {
        let mut q = url.query_pairs_mut();
        if !args.types.is_empty() {
            q.append_pair("type", &args.types.join(","));
        }
        match args.after {
            Some(after) => {
                q.append_pair("after", &after.to_string());
            }
            None if !args.follow => {
                q.append_pair("backlog", "true");
            }
            None => {}
        }
        q.append_pair("follow", if args.follow { "true" } else { "false" });
    }
    let mut resp = http
        .get(url)
        .bearer_auth(&settings.token)
        .send()
        .await
        .with_context(|| format!("cannot reach the coordinator at {}", settings.url))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        bail!("the coordinator refused ({status}): {message}");
    }
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.context("reading the change feed")? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for l in block.lines() {
                if let Some(v) = l.strip_prefix("event:") {
                    event = v.trim();
                } else if let Some(v) = l.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let value: Value = serde_json::from_str(&data).unwrap_or(Value::String(data.clone()));
            print(&line(event, &value, json))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_event_and_what_changed() {
        let data = serde_json::json!({"id": 7, "type": "host", "resource_id": "host-1",
            "data": {"state": "locked", "from": "available", "reason": null}, "at": 0});
        let text = line("host", &data, false);
        assert!(
            text.contains("host-1") && text.contains("state=locked"),
            "{text}"
        );
        assert!(!text.contains("reason"), "{text}");
        assert!(line("reload", &Value::Null, false).contains("missed"));
    }
}
