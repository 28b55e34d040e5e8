//! docs/openapi.json is a valid OpenAPI document by a real validator: `openapi-spec-validator`
//! (pinned) in the venv `scripts/install-deps.sh` makes. Any finding fails the test, and so
//! does a missing venv: the check is not optional.

use std::path::Path;
use std::process::Command;

const VALIDATOR: &str = "/opt/plinth-test/openapi-validator/bin/openapi-spec-validator";

#[test]
fn the_checked_in_openapi_document_is_valid() {
    assert!(
        Path::new(VALIDATOR).exists(),
        "{VALIDATOR} is missing: run scripts/install-deps.sh (it makes the venv)"
    );
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let out = Command::new(VALIDATOR)
        .arg("--validation-errors")
        .arg("all")
        .arg(&doc)
        .output()
        .unwrap_or_else(|e| panic!("running {VALIDATOR}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim_end().ends_with(": OK"),
        "{} is not a valid OpenAPI document:\n{text}",
        doc.display()
    );
}
