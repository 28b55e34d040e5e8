//! Importing bare-metal servers from a CSV file, all rows or none: the file is read and every
//! row checked first (fields, address syntax, duplicates in the file and against the servers
//! managed); one bad row refuses the file with a per-row report. A good file is added as one
//! batch, each server then prepared on its own.

use crate::baremetal::input::{self, CSV_HEADER, MAX_ROWS, ServerInput, ValidServer};
use crate::baremetal::{AuditNote, BaremetalError, BaremetalResult, add_rows, new_row, owner};
use crate::http::auth::Caller;
use crate::state::AppState;
use plinth_common::api::{ImportReport, ImportRow};
use std::collections::HashMap;

/// An import's answer.
#[derive(Debug)]
pub enum Imported {
    /// Every row was added; each has its new id.
    Added(ImportReport),
    /// Nothing was added: the message, and what is wrong with each row.
    Refused {
        message: String,
        rows: Vec<ImportRow>,
    },
}

/// Imports the CSV `body` for the caller (or, for an admin, the tenant with `tenant_email`).
pub async fn import(
    st: &AppState,
    caller: &Caller,
    tenant_email: Option<&str>,
    body: &[u8],
) -> BaremetalResult<Imported> {
    let tenant_id = owner(st, caller, tenant_email).await?;
    let rows = read_file(body)?;
    let (mut report, valid) = check_rows(&rows);
    mark_managed(st, caller, &mut report, &valid).await?;
    let bad = report.iter().filter(|r| !r.errors.is_empty()).count();
    if bad > 0 {
        let message = format!(
            "{bad} of {} rows are invalid; nothing was imported",
            report.len()
        );
        return Ok(Imported::Refused {
            message,
            rows: report,
        });
    }
    let new_rows = valid
        .iter()
        .flatten()
        .map(|v| new_row(st, v, &tenant_id))
        .collect::<BaremetalResult<Vec<_>>>()?;
    let note = AuditNote {
        action: "import baremetal",
        target: &tenant_id,
        detail: format!("{} servers", new_rows.len()),
    };
    add_rows(st, caller, &new_rows, note).await?;
    for (row, new) in report.iter_mut().zip(&new_rows) {
        row.id = Some(new.id.clone());
    }
    Ok(Imported::Added(ImportReport {
        imported: new_rows.len() as u64,
        rows: report,
    }))
}

fn csv_error(message: impl Into<String>) -> BaremetalError {
    BaremetalError::field("csv", message)
}

/// The file's rows under its header (blank lines left out), each with its line.
fn read_file(body: &[u8]) -> BaremetalResult<Vec<(u64, Vec<String>)>> {
    let text = std::str::from_utf8(body).map_err(|_| csv_error("the file is not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = input::parse_csv(text)
        .map_err(|line| csv_error(format!("line {line}: a quote is never closed")))?;
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(csv_error("the file is empty"));
    };
    if header.join(",") != CSV_HEADER {
        return Err(csv_error(format!(
            "the header must be exactly '{CSV_HEADER}'"
        )));
    }
    let rows: Vec<(u64, Vec<String>)> = records
        .filter(|(_, f)| !(f.len() == 1 && f[0].trim().is_empty()))
        .collect();
    if rows.is_empty() {
        return Err(csv_error("the file has no rows under the header"));
    }
    if rows.len() > MAX_ROWS {
        return Err(csv_error(format!("at most {MAX_ROWS} rows per file")));
    }
    Ok(rows)
}

/// The CSV column each field comes from, for the per-row report.
fn column(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "ipmi_ip" => "IPMIIP",
        "ipmi_username" => "IPMIUsername",
        "ipmi_password" => "IPMIPassword",
        "rack_location" => "RackLocation",
        "label" => "Label",
        _ => "row",
    }
}

/// One row checked on its own: the server, or what is wrong with it.
fn check_row(f: &[String]) -> Result<ValidServer, Vec<String>> {
    if f.len() != 6 {
        return Err(vec![format!("has {} fields; the header has 6", f.len())]);
    }
    input::check(&ServerInput {
        name: &f[0],
        ipmi_ip: &f[1],
        username: &f[2],
        password: &f[3],
        rack_location: &f[4],
        label: Some(&f[5]),
    })
    .map_err(|errs| {
        errs.into_iter()
            .map(|(field, m)| format!("{} {m}", column(field)))
            .collect()
    })
}

/// Every row checked, and an address given twice in the file named on its second line.
fn check_rows(rows: &[(u64, Vec<String>)]) -> (Vec<ImportRow>, Vec<Option<ValidServer>>) {
    let mut report = Vec::with_capacity(rows.len());
    let mut valid = Vec::with_capacity(rows.len());
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, f) in rows {
        let (checked, mut errors) = match check_row(f) {
            Ok(v) => (Some(v), Vec::new()),
            Err(errors) => (None, errors),
        };
        if let Some(v) = &checked
            && let Some(first) = first_line.insert(v.ipmi_ip.clone(), *line)
        {
            errors.push(format!("IPMIIP {} repeats line {first}", v.ipmi_ip));
            first_line.insert(v.ipmi_ip.clone(), first);
        }
        report.push(ImportRow {
            line: *line,
            name: f.first().cloned().unwrap_or_default(),
            errors,
            id: None,
        });
        valid.push(checked);
    }
    (report, valid)
}

/// Names the rows whose BMC is managed already (an admin also learns by which server).
async fn mark_managed(
    st: &AppState,
    caller: &Caller,
    report: &mut [ImportRow],
    valid: &[Option<ValidServer>],
) -> BaremetalResult<()> {
    let ips: Vec<String> = valid.iter().flatten().map(|v| v.ipmi_ip.clone()).collect();
    let managed = st.store.baremetal_ips_taken(&ips).await?;
    for (row, v) in report.iter_mut().zip(valid) {
        if let Some(v) = v
            && let Some(id) = managed.get(&v.ipmi_ip)
        {
            row.errors.push(match caller.tenant_id() {
                None => format!("IPMIIP {} is managed already (as {id})", v.ipmi_ip),
                Some(_) => format!("IPMIIP {} is managed already", v.ipmi_ip),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> BaremetalResult<Vec<(u64, Vec<String>)>> {
        read_file(text.as_bytes())
    }

    #[test]
    fn a_file_is_refused_whole_for_its_shape() {
        let header = format!("{CSV_HEADER}\r\n");
        let cases = [
            ("empty", String::new(), "the file is empty"),
            ("header only", header.clone(), "no rows under the header"),
            (
                "wrong header",
                "Name,IP\r\nx,y\r\n".to_string(),
                "header must be",
            ),
            ("open quote", format!("{header}\"x,1"), "line 2: a quote"),
        ];
        for (label, text, want) in cases {
            match rows(&text) {
                Err(BaremetalError::Field { field, message }) => {
                    assert_eq!(field, "csv", "{label}");
                    assert!(message.contains(want), "{label}: {message}");
                }
                other => panic!("{label}: {other:?}"),
            }
        }
        assert!(matches!(
            read_file(&[0xff, 0xfe]),
            Err(BaremetalError::Field { .. })
        ));
        let bom = format!("\u{feff}{header}a,10.0.0.1,u,p,R1,\r\n\r\n");
        assert_eq!(
            rows(&bom).map(|r| r.len()).ok(),
            Some(1),
            "BOM and blank line"
        );
    }

    #[test]
    fn rows_are_checked_each_and_repeats_named() {
        let text = format!(
            "{CSV_HEADER}\na,10.0.0.1,u,p,R1,\nb,10.0.0.300,u,p,R1,\nc,10.0.0.1,u,p,R1,\nd,1\n"
        );
        let rows = rows(&text).expect("parses");
        let (report, valid) = check_rows(&rows);
        let got: Vec<_> = report
            .iter()
            .map(|r| (r.line, r.errors.first().cloned().unwrap_or_default()))
            .collect();
        assert_eq!(got[0], (2, String::new()));
        assert!(got[1].1.starts_with("IPMIIP "), "{got:?}");
        assert_eq!(got[2], (4, "IPMIIP 10.0.0.1 repeats line 2".to_string()));
        assert_eq!(got[3], (5, "has 2 fields; the header has 6".to_string()));
        assert_eq!(valid.iter().flatten().count(), 2);
    }
}
