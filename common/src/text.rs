//! The one rule for text a person types into plinth and others read back in tables, logs and
//! terminals: names, notes, descriptions, labels. No control characters (they move cursors,
//! end lines or cut strings in what shows them) and a documented length for each kind.

/// A kind of free text and its length, in characters (Unicode scalar values) after trimming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextKind {
    pub min: usize,
    pub max: usize,
}

/// Names: tenants, tokens, images (and their tags), segments, bare-metal servers with their
/// rack locations and labels. Identifiers with a stricter syntax (cluster ids, instance
/// names) keep it: `ids::validate_slug`.
pub const NAME: TextKind = TextKind { min: 1, max: 64 };

/// Notes and descriptions: image notes, cluster and enrollment-token descriptions. May be
/// empty; one line.
pub const NOTE: TextKind = TextKind { min: 0, max: 1024 };

/// Why an operator forced or revoked something (host removal, certificate revocation):
/// required, one line, kept in the audit log and instances' reasons.
pub const REASON: TextKind = TextKind { min: 1, max: 256 };

/// Characters no text may hold: Unicode `Cc` (NUL, TAB, LF, CR, ESC, DEL, the C1 range), the
/// line and paragraph separators, and the bidirectional overrides and isolates that make a
/// terminal show text in another order than it is stored ("Trojan Source").
pub fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks `value` against `kind`; the trimmed text, or what is wrong with it in words that
/// follow the field's name ("name must be ...").
pub fn check(kind: TextKind, value: &str) -> Result<&str, String> {
    let text = value.trim();
    if let Some(c) = text.chars().find(|c| forbidden(*c)) {
        return Err(format!(
            "must not contain control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    let len = text.chars().count();
    if len < kind.min || len > kind.max {
        return Err(if kind.min == 0 {
            format!("must be at most {} characters (got {len})", kind.max)
        } else if len == 0 {
            format!("is required ({}-{} characters)", kind.min, kind.max)
        } else {
            format!("must be {}-{} characters (got {len})", kind.min, kind.max)
        });
    }
    Ok(text)
}

/// The longest URL plinth stores (import sources): what browsers and most servers accept.
pub const MAX_URL_BYTES: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: [(&str, &str, Result<&str, &str>); 14] = [
            ("plain", "web tier", Ok("web tier")),
            ("trimmed", "  web  ", Ok("web")),
            (
                "unicode letters count once",
                "Zürich östra",
                Ok("Zürich östra"),
            ),
            ("exactly the maximum", &"é".repeat(64), Ok(&"é".repeat(64))),
            ("empty", "", Err("is required")),
            ("only spaces", "   ", Err("is required")),
            (
                "one over the maximum",
                &"x".repeat(65),
                Err("1-64 characters"),
            ),
            ("ESC", "a\u{1b}[2Jb", Err("U+001B")),
            ("LF", "a\nb", Err("U+000A")),
            ("CR", "a\rb", Err("U+000D")),
            ("NUL", "a\0b", Err("U+0000")),
            ("DEL", "a\u{7f}b", Err("U+007F")),
            ("C1 CSI", "a\u{9b}b", Err("U+009B")),
            ("bidi override", "abc\u{202e}fed", Err("U+202E")),
        ];
        for (label, input, want) in cases {
            match (check(NAME, input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{label}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{label}: {got}"),
                (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn notes() {
        let cases: [(&str, &str, Result<&str, &str>); 6] = [
            ("empty is fine", "", Ok("")),
            (
                "plain",
                "built from the 7.9 ISO",
                Ok("built from the 7.9 ISO"),
            ),
            (
                "exactly the maximum",
                &"n".repeat(1024),
                Ok(&"n".repeat(1024)),
            ),
            (
                "one over the maximum",
                &"n".repeat(1025),
                Err("at most 1024"),
            ),
            ("TAB", "a\tb", Err("U+0009")),
            ("line separator", "a\u{2028}b", Err("U+2028")),
        ];
        for (label, input, want) in cases {
            match (check(NOTE, input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{label}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{label}: {got}"),
                (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
            }
        }
    }
}
