//! Printing results: the raw JSON with `--json`, else the typed response rendered as text.
//! Writes ignore a closed pipe, so `plinth audit | head` ends quietly.

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::Write;

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints `value` pretty-printed with `--json`; else reads it as `T` and prints `render`'s text.
    pub fn emit<T: DeserializeOwned>(
        &self,
        value: Value,
        render: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            let text =
                serde_json::to_string_pretty(&value).context("formatting the JSON response")?;
            return print(&format!("{text}\n"));
        }
        let typed: T = serde_json::from_value(value)
            .context("the coordinator's response has an unexpected shape")?;
        print(&render(&typed))
    }

    /// Prints a message for a response without a body; nothing with `--json`.
    pub fn note(&self, text: &str) -> anyhow::Result<()> {
        if self.json { Ok(()) } else { print(text) }
    }
}

/// Writes to stdout; a reader that went away is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("writing to stdout")
        }
        _ => Ok(()),
    }
}
