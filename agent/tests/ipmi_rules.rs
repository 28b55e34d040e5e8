//! The bare-metal alert rules (docs/prometheus/plinth-ipmi-rules.yml) checked and unit-tested
//! by Prometheus' own promtool: a critical sensor and an unreachable BMC, one test each.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("promtool (Debian's prometheus package, scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_ipmi_rules_are_valid_and_pass_their_unit_tests() {
    promtool(&["check", "rules", "plinth-ipmi-rules.yml"]);
    promtool(&["test", "rules", "plinth-ipmi-rules.test.yml"]);
}
