//! `plinth hosts metrics ID`: the host's 14 metrics, each with its latest value, a sparkline of
//! its recent history, and the range it moved in.

use crate::client::Client;
use crate::output::Output;
use crate::table::Table;
use plinth_common::api::{HostMetrics, MetricSeries, MetricsSource};

/// How many characters a trend is drawn in (older points are averaged together).
const TREND_WIDTH: usize = 40;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[derive(clap::Args)]
pub struct MetricsArgs {
    id: String,
    /// Only these series, comma-separated (e.g. cpu_used_percent,load1) [default: all 14].
    #[arg(long, value_name = "NAMES")]
    names: Option<String>,
    /// Start this far back (15m, 6h) or at this RFC 3339 time [default: all the agent keeps,
    /// or the last hour from Prometheus].
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Read the history from the agent or from the coordinator's Prometheus.
    #[arg(long, value_parser = ["agent", "prometheus"])]
    source: Option<String>,
}

pub async fn run(client: &Client, out: &Output, args: MetricsArgs) -> anyhow::Result<()> {
    let query: Vec<(&str, String)> = [
        ("names", args.names),
        ("since", args.since),
        ("source", args.source),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let value = client
        .get_with(&["v1", "hosts", &args.id, "metrics"], &query)
        .await?;
    out.emit(value, render)
}

pub fn render(m: &HostMetrics) -> String {
    let source = match m.source {
        MetricsSource::Agent => "agent",
        MetricsSource::Prometheus => "prometheus",
    };
    let mut table = Table::new(&["metric", "now", "trend", "min", "max", "points"]);
    for s in &m.series {
        let values: Vec<f64> = s.points.iter().map(|p| p.v).collect();
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let now = values.last().map(|v| value(*v, &s.unit));
        table.row(vec![
            s.name.title().to_string(),
            now.unwrap_or_else(|| "-".into()),
            sparkline(
                &values,
                TREND_WIDTH,
                (s.unit == "percent").then_some((0.0, 100.0)),
            ),
            if values.is_empty() {
                "-".into()
            } else {
                value(min, &s.unit)
            },
            if values.is_empty() {
                "-".into()
            } else {
                value(max, &s.unit)
            },
            s.points.len().to_string(),
        ]);
    }
    let span = span(&m.series);
    format!(
        "host {} · from {source} · {}s steps{span}\n{}",
        m.host_id,
        m.step_s,
        table.render()
    )
}

fn span(series: &[MetricSeries]) -> String {
    let first = series
        .iter()
        .filter_map(|s| s.points.first())
        .map(|p| p.t)
        .min();
    let last = series
        .iter()
        .filter_map(|s| s.points.last())
        .map(|p| p.t)
        .max();
    match (first, last) {
        (Some(a), Some(b)) if b > a => format!(" · {} of history", minutes((b - a) / 1000)),
        _ => String::new(),
    }
}

fn minutes(secs: i64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// A value in its unit: bytes/s scaled (KiB/s, MiB/s, ...), percentages with one decimal.
fn value(v: f64, unit: &str) -> String {
    match unit {
        "bytes/s" => {
            let mut v = v;
            let mut scale = 0;
            while v >= 1024.0 && scale < 4 {
                v /= 1024.0;
                scale += 1;
            }
            let units = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"];
            if scale == 0 {
                format!("{v:.0} B/s")
            } else {
                format!("{v:.1} {}", units[scale])
            }
        }
        "percent" => format!("{v:.1}%"),
        "load" => format!("{v:.2}"),
        "packets/s" | "ops/s" => format!("{v:.1} {unit}"),
        _ => format!("{v:.0}"),
    }
}

/// The values as bars, averaged down to `width` characters. The bars span `range` when given
/// (0-100 for a percentage), else the values' own range; a series that moves by less than
/// 1% of its size is drawn flat, so noise does not look like a trend.
pub fn sparkline(values: &[f64], width: usize, range: Option<(f64, f64)>) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let buckets = values.len().min(width);
    let avg: Vec<f64> = (0..buckets)
        .map(|b| {
            let from = b * values.len() / buckets;
            let to = ((b + 1) * values.len() / buckets).max(from + 1);
            values[from..to].iter().sum::<f64>() / (to - from) as f64
        })
        .collect();
    let (lo, hi) = range.unwrap_or_else(|| {
        let lo = avg.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = avg.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    });
    let flat = range.is_none() && hi - lo <= 0.01 * hi.abs().max(lo.abs());
    avg.iter()
        .map(|v| {
            if flat || hi <= lo {
                BARS[0]
            } else {
                let i = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round() as usize;
                BARS[i.min(BARS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_common::api::MetricPoint;
    use plinth_common::metrics::HostSeries;

    #[test]
    fn sparklines() {
        assert_eq!(sparkline(&[], 10, None), "");
        assert_eq!(sparkline(&[3.0, 3.0], 10, None), "▁▁", "flat is flat");
        assert_eq!(sparkline(&[86.0, 86.001], 10, None), "▁▁", "noise is flat");
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8, None),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(
            sparkline(&[0.0, 0.0, 10.0, 10.0], 2, None),
            "▁█",
            "averaged down"
        );
        assert_eq!(
            sparkline(&[50.0, 100.0], 2, Some((0.0, 100.0))),
            "▅█",
            "a percentage on its full scale"
        );
    }

    #[test]
    fn values_in_units() {
        assert_eq!(value(512.0, "bytes/s"), "512 B/s");
        assert_eq!(value(3.5 * 1024.0 * 1024.0, "bytes/s"), "3.5 MiB/s");
        assert_eq!(value(42.26, "percent"), "42.3%");
        assert_eq!(value(0.5, "load"), "0.50");
        assert_eq!(value(12.0, "connections"), "12");
    }

    #[test]
    fn renders_current_value_and_trend() {
        let m = HostMetrics {
            host_id: "host-1".into(),
            source: MetricsSource::Agent,
            step_s: 15,
            series: vec![
                MetricSeries {
                    name: HostSeries::CpuUsedPercent,
                    unit: "percent".into(),
                    points: (0..4)
                        .map(|i| MetricPoint {
                            t: i * 15_000,
                            v: 10.0 * i as f64,
                        })
                        .collect(),
                },
                MetricSeries {
                    name: HostSeries::ProcsBlocked,
                    unit: "processes".into(),
                    points: vec![],
                },
            ],
        };
        let text = render(&m);
        assert!(
            text.starts_with("host host-1 · from agent · 15s steps · 45s of history\n"),
            "{text}"
        );
        assert!(text.contains("CPU usage"), "{text}");
        assert!(text.contains("30.0%"), "{text}");
        assert!(text.contains("▁▂▂▃"), "0-30% on a 0-100 scale: {text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("Blocked processes") && l.contains(" - ")),
            "{text}"
        );
    }
}
