//! Progress on stderr: byte progress as an indicatif bar when stderr is a terminal (a spinner
//! with the byte count while the total is unknown), and a [`Board`] of a few status lines
//! redrawn in place; without a terminal, plain lines every few seconds. Stdout stays free for
//! the result, so `--json` output is only the JSON.

use crate::format::size;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a plain line is written when stderr is not a terminal.
const PLAIN_EVERY_SECS: u64 = 5;
const TICK: Duration = Duration::from_millis(120);
const BAR: &str = "{spinner} {prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} \
                   {binary_bytes_per_sec} eta {eta} {msg}";
const SPINNER: &str = "{spinner} {prefix} {binary_bytes} {binary_bytes_per_sec} {msg}";

/// A progress display; clones share it, so a stream can advance what the caller shows.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    label: String,
    /// Drawing the bar; otherwise writing plain lines.
    drawn: bool,
    /// Elapsed whole seconds when the last plain line was written.
    last_line: Arc<AtomicU64>,
}

fn style(template: &str, fallback: fn() -> ProgressStyle) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| fallback())
}

impl Progress {
    /// Starts showing progress of `label` (e.g. `upload img-1`) towards `total` bytes.
    pub fn new(label: &str, total: Option<u64>) -> Progress {
        let drawn = std::io::stderr().is_terminal();
        let target = if drawn {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target).with_prefix(label.to_string());
        bar.set_style(style(SPINNER, ProgressStyle::default_spinner));
        if drawn {
            bar.enable_steady_tick(TICK);
        }
        let progress = Progress {
            bar,
            label: label.to_string(),
            drawn,
            last_line: Arc::new(AtomicU64::new(0)),
        };
        progress.set_total(total);
        progress
    }

    /// Switches from the spinner to a bar once the total is known.
    fn set_total(&self, total: Option<u64>) {
        if let Some(total) = total
            && self.bar.length() != Some(total)
        {
            self.bar.set_length(total);
            self.bar.set_style(style(BAR, ProgressStyle::default_bar));
        }
    }

    /// Sets how far the work has come.
    pub fn set(&self, position: u64, total: Option<u64>) {
        self.set_total(total);
        self.bar.set_position(position);
        self.plain_line();
    }

    /// Adds `bytes` to the position.
    pub fn add(&self, bytes: u64) {
        self.bar.inc(bytes);
        self.plain_line();
    }

    /// Whether the position has reached a known total.
    pub fn complete(&self) -> bool {
        self.bar
            .length()
            .is_some_and(|total| self.bar.position() >= total)
    }

    /// A short note after the numbers, such as what is happening now.
    pub fn message(&self, text: &str) {
        self.bar.set_message(text.to_string());
    }

    /// Removes the bar so the result prints on a clean line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Without a terminal: at most one line every few seconds.
    fn plain_line(&self) {
        if self.drawn {
            return;
        }
        let now = self.bar.elapsed().as_secs();
        let last = self.last_line.load(Ordering::Relaxed);
        if now < last + PLAIN_EVERY_SECS
            || self
                .last_line
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        eprintln!("{}: {}", self.label, self.amount());
    }

    /// `512 MiB of 2.0 GiB (25%)`, or `512 MiB` while the total is unknown.
    fn amount(&self) -> String {
        let done = self.bar.position();
        match self.bar.length().filter(|t| *t > 0) {
            Some(total) => format!(
                "{} of {} ({}%)",
                size(done),
                size(total),
                done.saturating_mul(100) / total
            ),
            None => size(done),
        }
    }
}

/// A few lines of live status (a drain, a migration) on stderr. On a terminal they are redrawn
/// in place under a spinner, and [`Board::log`] lines go above them and stay; without one, log
/// lines are written as they come and the status every few seconds, so a log file reads top
/// to bottom.
pub struct Board {
    bar: ProgressBar,
    drawn: bool,
    /// When the status was last written as plain lines.
    last_plain: Option<Instant>,
}

impl Board {
    pub fn new() -> Board {
        let drawn = std::io::stderr().is_terminal();
        let target = if drawn {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(style("{spinner} {msg}", ProgressStyle::default_spinner));
        if drawn {
            bar.enable_steady_tick(TICK);
        }
        Board {
            bar,
            drawn,
            last_plain: None,
        }
    }

    /// A line that stays: what just happened.
    pub fn log(&self, line: &str) {
        if self.drawn {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// Replaces the status lines.
    pub fn show(&mut self, lines: &[String]) {
        if self.drawn {
            self.bar.set_message(lines.join("\n"));
            return;
        }
        let due = self
            .last_plain
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(PLAIN_EVERY_SECS));
        if due {
            self.last_plain = Some(Instant::now());
            for line in lines {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Board {
    /// Clears the status, also when an error ends the wait, so what follows prints cleanly.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
