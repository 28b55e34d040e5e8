//! What the benchmarks share: weighted draws and nearest-rank latency percentiles.

use rand::Rng;
use rand::rngs::StdRng;
use std::time::Duration;

/// An index drawn with probability proportional to its weight.
pub fn pick_weighted(rng: &mut StdRng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let sum: u32 = weights.clone().sum();
    let mut x = rng.gen_range(0..sum);
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentiles, in milliseconds.
pub fn stats(mut ds: Vec<Duration>) -> Stats {
    ds.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: f64| {
        if ds.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * ds.len() as f64).ceil() as usize;
        ms(ds[rank.clamp(1, ds.len()) - 1])
    };
    Stats {
        n: ds.len(),
        p50: pct(50.0),
        p90: pct(90.0),
        p99: pct(99.0),
        max: ds.last().map_or(f64::NAN, |d| ms(*d)),
    }
}
