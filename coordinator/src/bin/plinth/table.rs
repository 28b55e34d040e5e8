//! A small text table printer (columns two spaces apart, headers in caps) and aligned
//! `key: value` blocks. Control characters from the server are escaped, never printed raw.

const GAP: &str = "  ";

/// Rows of cells under upper-case headers, each column as wide as its widest cell.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Escapes control characters (newlines, terminal escapes) so one cell stays one line.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Joins cells padded to `widths`, without trailing spaces.
fn line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, w)| format!("{cell}{}", " ".repeat(w.saturating_sub(width(cell)))))
        .collect();
    format!("{}\n", padded.join(GAP).trim_end())
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra ones are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| clean(c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut text = line(&self.headers, &widths);
        for row in &self.rows {
            text.push_str(&line(row, &widths));
        }
        text
    }
}

/// `key: value` lines with the values aligned.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let key_width = pairs.iter().map(|(k, _)| width(k) + 1).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("{:<key_width$}  {}\n", format!("{key}:"), clean(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_without_trailing_spaces() {
        let mut table = Table::new(&["id", "cpu model"]);
        table.row(vec!["host-1".into(), "Xeon".into()]);
        table.row(vec!["h".into(), String::new()]);
        assert_eq!(table.render(), "ID      CPU MODEL\nhost-1  Xeon\nh\n");
    }

    #[test]
    fn escapes_control_characters() {
        assert_eq!(clean("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn aligns_keys() {
        assert_eq!(
            key_values(&[("id", "x".into()), ("state", "locked".into())]),
            "id:     x\nstate:  locked\n"
        );
    }
}
