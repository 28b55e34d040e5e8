//! The coordinator's client of a Prometheus server that scrapes the agents: the host metrics
//! history for ranges longer than an agent keeps, through `/api/v1/query_range`, with the same
//! definitions as the agents' rings (`plinth_common::metrics::HostSeries::promql`).

use plinth_common::api::{HostMetrics, MetricPoint, MetricSeries, MetricsSource};
use plinth_common::metrics::{HostSeries, promql_regex_literal};
use std::time::Duration;

/// Picks a host's target: its agent's `/metrics` address is `<ip>:<port>`.
pub const DEFAULT_SELECTOR: &str = "instance=~\"{ip_re}:[0-9]+\"";
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
/// About this many points per series, whatever the range.
const POINTS: u64 = 240;
const MIN_STEP_S: u64 = 15;
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// `http(s)://host:port`, where `/api/v1/query_range` answers.
    pub url: String,
    /// Label matchers with `{host_id}`, `{ip}` and `{ip_re}` (the address as a regular
    /// expression, bracketed for IPv6 as in an `instance` label) filled in.
    pub selector: String,
    /// The range rates are taken over; at least four scrape intervals.
    pub rate_window: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("request to Prometheus failed")]
    Http(#[from] reqwest::Error),
    #[error("Prometheus answered {status}: {message}")]
    Refused { status: u16, message: String },
}

#[derive(Debug, Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    config: PrometheusConfig,
}

#[derive(serde::Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Matrix>,
}

#[derive(serde::Deserialize)]
struct Matrix {
    result: Vec<Stream>,
}

#[derive(serde::Deserialize)]
struct Stream {
    values: Vec<(f64, String)>,
}

impl Prometheus {
    pub fn new(config: PrometheusConfig) -> anyhow::Result<Prometheus> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(QUERY_TIMEOUT)
            .build()?;
        Ok(Prometheus { http, config })
    }

    /// The selector for one host.
    pub fn selector(&self, host_id: &str, ip: &str) -> String {
        let bracketed = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        self.config
            .selector
            .replace("{host_id}", host_id)
            .replace("{ip_re}", &promql_regex_literal(&bracketed))
            .replace("{ip}", ip)
    }

    /// The history of `names` for the host from `since_ms` to `now_ms`, one query each, all
    /// at once.
    pub async fn host_metrics(
        &self,
        host_id: &str,
        ip: &str,
        names: &[HostSeries],
        since_ms: i64,
        now_ms: i64,
    ) -> Result<HostMetrics, PrometheusError> {
        let range_s = ((now_ms - since_ms).max(0) / 1000) as u64;
        let step = range_s.div_ceil(POINTS).max(MIN_STEP_S);
        // Points on multiples of the step, so that a graph does not shimmer between calls.
        let start = (since_ms / 1000).div_euclid(step as i64) * step as i64;
        let end = now_ms / 1000;
        let window = self.config.rate_window.as_secs().max(step);
        let selector = self.selector(host_id, ip);
        let queries = names.iter().map(|s| {
            let query = s.promql(&selector, &format!("{window}s"));
            async move {
                let points = self.query_range(&query, start, end, step).await?;
                Ok::<_, PrometheusError>(MetricSeries {
                    name: *s,
                    unit: s.unit().to_string(),
                    points,
                })
            }
        });
        let series = futures_util::future::try_join_all(queries).await?;
        Ok(HostMetrics {
            host_id: host_id.to_string(),
            source: MetricsSource::Prometheus,
            step_s: step as u32,
            series,
        })
    }

    async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: u64,
    ) -> Result<Vec<MetricPoint>, PrometheusError> {
        let url = format!(
            "{}/api/v1/query_range",
            self.config.url.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(url)
            .query(&[
                ("query", query.to_string()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("step", step.to_string()),
            ])
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        parse_matrix(status.as_u16(), &text)
    }
}

/// The first stream of a `query_range` answer as points (the queries aggregate to one);
/// `NaN` and infinities (a rate over nothing) are left out.
fn parse_matrix(status: u16, text: &str) -> Result<Vec<MetricPoint>, PrometheusError> {
    let refused = |message: String| PrometheusError::Refused { status, message };
    let answer: Answer =
        serde_json::from_str(text).map_err(|_| refused(text.chars().take(200).collect()))?;
    if answer.status != "success" {
        return Err(refused(answer.error.unwrap_or(answer.status)));
    }
    let Some(stream) = answer.data.and_then(|d| d.result.into_iter().next()) else {
        return Ok(Vec::new());
    };
    Ok(stream
        .values
        .into_iter()
        .filter_map(|(t, v)| {
            let v: f64 = v.parse().ok()?;
            v.is_finite().then_some(MetricPoint {
                t: (t * 1000.0).round() as i64,
                v,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(selector: &str) -> Prometheus {
        Prometheus::new(PrometheusConfig {
            url: "http://127.0.0.1:9090".into(),
            selector: selector.into(),
            rate_window: DEFAULT_RATE_WINDOW,
        })
        .expect("client")
    }

    #[test]
    fn selectors() {
        let p = client(DEFAULT_SELECTOR);
        assert_eq!(
            p.selector("host-1", "10.0.0.5"),
            "instance=~\"10\\\\.0\\\\.0\\\\.5:[0-9]+\""
        );
        assert_eq!(
            p.selector("host-1", "fd00::5"),
            "instance=~\"\\\\[fd00::5\\\\]:[0-9]+\""
        );
        let by_label = client("job=\"plinth\",host=\"{host_id}\",ip=\"{ip}\"");
        assert_eq!(
            by_label.selector("host-1", "10.0.0.5"),
            "job=\"plinth\",host=\"host-1\",ip=\"10.0.0.5\""
        );
    }

    #[test]
    fn reads_a_matrix() {
        let ok = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1700000000,"1.5"],[1700000015.5,"NaN"],[1700000030,"2"]]}]}}"#;
        assert_eq!(
            parse_matrix(200, ok).expect("matrix"),
            vec![
                MetricPoint {
                    t: 1_700_000_000_000,
                    v: 1.5
                },
                MetricPoint {
                    t: 1_700_000_030_000,
                    v: 2.0
                },
            ]
        );
        let empty = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_matrix(200, empty).expect("empty").is_empty());
        let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let err = parse_matrix(400, bad).expect_err("refused");
        assert_eq!(err.to_string(), "Prometheus answered 400: parse error");
        let html = parse_matrix(502, "<html>bad gateway</html>").expect_err("not json");
        assert!(err_text(&html).contains("bad gateway"));
    }

    fn err_text(e: &PrometheusError) -> String {
        e.to_string()
    }
}
