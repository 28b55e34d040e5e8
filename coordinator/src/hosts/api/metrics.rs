//! `GET /v1/hosts/{id}/metrics`: the recent history of the seed's 14 host metrics, from the
//! host's agent over mTLS (its in-memory ring) or, when one is configured, from Prometheus.

use crate::hosts::{self, MetricsAsk};
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{ErrorBody, HostMetrics, MetricsSource};
use plinth_common::ids::HostId;
use plinth_common::metrics::HostSeries;
use plinth_common::timefmt::{now_ms, parse_duration};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/hosts/{id}/metrics", get(host_metrics))
}

/// How far back Prometheus is asked, at most.
const MAX_RANGE_MS: i64 = 31 * 86_400_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Comma-separated series (net_rx_bytes, net_tx_bytes, disk_read_bytes,
    /// disk_written_bytes, load1, memory_used_percent, filesystem_used_percent, disk_reads,
    /// disk_writes, net_rx_packets, net_tx_packets, cpu_used_percent, tcp_established,
    /// procs_blocked); all when absent.
    names: Option<String>,
    /// Where the history starts: a duration back from now (`15m`, `6h`) or an RFC 3339 time.
    /// Default: all the agent keeps (an hour), or the last hour from Prometheus.
    since: Option<String>,
    /// `agent` or `prometheus` [default: prometheus when the coordinator has a
    /// prometheus_url, else agent].
    source: Option<String>,
}

fn parse_since(text: &str, now: i64) -> ApiResult<i64> {
    let since = match parse_duration(text) {
        Ok(d) => now - d.as_millis().min(i64::MAX as u128) as i64,
        Err(_) => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                ApiError::field(
                    "since",
                    format!("'{text}' is neither a duration (15m, 6h) nor an RFC 3339 time"),
                )
            })?;
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        }
    };
    if now - since > MAX_RANGE_MS {
        return Err(ApiError::field("since", "reaches back more than 31 days"));
    }
    Ok(since)
}

impl MetricsQuery {
    /// The query's fields, checked, as of `now`.
    fn ask(&self, now: i64) -> ApiResult<MetricsAsk> {
        let names = HostSeries::parse_list(self.names.as_deref().unwrap_or(""))
            .map_err(|m| ApiError::field("names", m))?;
        let since = self
            .since
            .as_deref()
            .map(|s| parse_since(s, now))
            .transpose()?;
        let source = match self.source.as_deref() {
            None => None,
            Some("agent") => Some(MetricsSource::Agent),
            Some("prometheus") => Some(MetricsSource::Prometheus),
            Some(other) => {
                return Err(ApiError::field(
                    "source",
                    format!("'{other}' is neither agent nor prometheus"),
                ));
            }
        };
        Ok(MetricsAsk {
            names,
            since,
            source,
            now,
        })
    }
}

/// Recent history of the host's 14 metrics (rates and percentages, one point per step).
#[utoipa::path(get, path = "/v1/hosts/{id}/metrics", tag = "hosts", params(("id" = String, Path, description = "host id"), MetricsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = HostMetrics), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn host_metrics(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> ApiResult<ApiJson<HostMetrics>> {
    let ask = q.ask(now_ms())?;
    Ok(ApiJson(hosts::metrics(&st, &id, &ask).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_duration_or_a_time() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_since("15m", now).ok(), Some(now - 900_000));
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).ok(),
            Some(1_700_000_000_000)
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("32d", now).is_err());
    }
}
