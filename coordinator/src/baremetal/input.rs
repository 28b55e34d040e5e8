//! Checking bare-metal input, one place for the API's add and the CSV import: required
//! fields, IPMI's own limits (user ≤ 16 bytes, password ≤ 20), the address's syntax, and the
//! import file's exact header and quoting.

use plinth_common::text::{self, NAME};
use std::net::IpAddr;

/// The import file's header, exactly (SPEC §4).
pub const CSV_HEADER: &str = "Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label";
pub const MAX_ROWS: usize = 10_000;

/// One server as typed by a person, not yet checked.
#[derive(Debug, Clone, Copy)]
pub struct ServerInput<'a> {
    pub name: &'a str,
    pub ipmi_ip: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub rack_location: &'a str,
    pub label: Option<&'a str>,
}

/// A checked server: the address canonical, the label absent when blank.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidServer {
    pub name: String,
    pub ipmi_ip: String,
    pub username: String,
    pub password: String,
    pub rack_location: String,
    pub label: Option<String>,
}

impl std::fmt::Debug for ValidServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidServer({} at {})", self.name, self.ipmi_ip)
    }
}

/// Names, rack locations and labels follow the one text rule (`plinth_common::text::NAME`).
fn text(field: &'static str, value: &str, errors: &mut Vec<(&'static str, String)>) {
    if let Err(m) = text::check(NAME, value) {
        errors.push((field, m));
    }
}

/// Checks `s`; every problem is named by its field (the password is never quoted).
pub fn check(s: &ServerInput<'_>) -> Result<ValidServer, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    text("name", s.name, &mut errors);
    text("rack_location", s.rack_location, &mut errors);
    if let Some(label) = s.label.filter(|l| !l.trim().is_empty()) {
        text("label", label, &mut errors);
    }
    let ip = match s.ipmi_ip.trim() {
        "" => {
            errors.push(("ipmi_ip", "is required".into()));
            None
        }
        t => match t.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                errors.push(("ipmi_ip", format!("'{t}' cannot be a BMC's address")));
                None
            }
            Ok(IpAddr::V4(v4)) if v4.is_broadcast() => {
                errors.push(("ipmi_ip", format!("'{t}' cannot be a BMC's address")));
                None
            }
            Ok(ip) => Some(ip),
            Err(_) => {
                errors.push(("ipmi_ip", format!("'{t}' is not an IPv4 or IPv6 address")));
                None
            }
        },
    };
    if s.username.is_empty() {
        errors.push(("ipmi_username", "is required".into()));
    } else if s.username.len() > 16 {
        errors.push((
            "ipmi_username",
            "must be at most 16 bytes (IPMI's limit)".into(),
        ));
    } else if s.username.chars().any(char::is_control) {
        errors.push((
            "ipmi_username",
            "must not contain control characters".into(),
        ));
    }
    if s.password.is_empty() {
        errors.push(("ipmi_password", "is required".into()));
    } else if s.password.len() > 20 {
        errors.push((
            "ipmi_password",
            "must be at most 20 bytes (IPMI v2.0's limit)".into(),
        ));
    }
    match ip {
        Some(ip) if errors.is_empty() => Ok(ValidServer {
            name: s.name.trim().to_string(),
            ipmi_ip: ip.to_string(),
            username: s.username.to_string(),
            password: s.password.to_string(),
            rack_location: s.rack_location.trim().to_string(),
            label: s
                .label
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        }),
        _ => Err(errors),
    }
}

/// RFC 4180 records: commas, double quotes ("" inside quotes), CRLF or LF. Each record with
/// the 1-based line it starts on. `Err` names the line of an unterminated quote.
pub fn parse_csv(input: &str) -> Result<Vec<(u64, Vec<String>)>, u64> {
    let mut records = Vec::new();
    let mut field = String::new();
    let mut fields = Vec::new();
    let mut line = 1u64;
    let mut start = 1u64;
    let mut quoted = false;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(start);
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(ip: &'a str, user: &'a str, password: &'a str) -> ServerInput<'a> {
        ServerInput {
            name: "bm-1",
            ipmi_ip: ip,
            username: user,
            password,
            rack_location: "R1-U2",
            label: Some("  "),
        }
    }

    #[test]
    fn fields_are_checked_and_named() {
        let ok = check(&input(" 10.0.0.5 ", "admin", "pw")).expect("valid");
        assert_eq!(ok.ipmi_ip, "10.0.0.5");
        assert_eq!(ok.label, None, "a blank label is none");
        assert_eq!(
            check(&input("fd00::0005", "admin", "pw"))
                .expect("v6")
                .ipmi_ip,
            "fd00::5"
        );
        let (long_user, long_password) = ("u".repeat(17), "p".repeat(21));
        let cases = [
            ("not an ip", input("10.0.0.256", "admin", "pw"), "ipmi_ip"),
            ("unspecified", input("0.0.0.0", "admin", "pw"), "ipmi_ip"),
            ("missing ip", input("", "admin", "pw"), "ipmi_ip"),
            (
                "long user",
                input("10.0.0.5", &long_user, "pw"),
                "ipmi_username",
            ),
            (
                "no password",
                input("10.0.0.5", "admin", ""),
                "ipmi_password",
            ),
            (
                "long password",
                input("10.0.0.5", "admin", &long_password),
                "ipmi_password",
            ),
        ];
        for (label, case, field) in cases {
            let errors = check(&case).expect_err(label);
            assert!(
                errors.iter().any(|(f, _)| *f == field),
                "{label}: {errors:?}"
            );
        }
        let mut no_rack = input("10.0.0.5", "admin", "pw");
        no_rack.rack_location = " ";
        no_rack.name = "";
        let errors = check(&no_rack).expect_err("two missing");
        let fields: Vec<_> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["name", "rack_location"]);
    }

    #[test]
    fn csv_quotes_line_ends_and_lines() {
        let text = "a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\"multi\nline\",z\nlast,row";
        let records = parse_csv(text).expect("parses");
        assert_eq!(
            records,
            vec![
                (1, vec!["a".to_string(), "b".to_string()]),
                (2, vec!["x,1".to_string(), "say \"hi\"".to_string()]),
                (3, vec!["multi\nline".to_string(), "z".to_string()]),
                (5, vec!["last".to_string(), "row".to_string()]),
            ]
        );
        assert_eq!(parse_csv("a,\"b\nc"), Err(1));
        assert_eq!(parse_csv("").expect("empty"), vec![]);
    }
}
