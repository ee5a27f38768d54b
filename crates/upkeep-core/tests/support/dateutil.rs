//! Running a python-dateutil reference script (`tests/dateutil/*.py`) and reporting the cases
//! where upkeep differs from it: shared by the recurrence and the schedule comparisons, which
//! differ only in what they send and how they compare.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const INSTALL: &str = "install python-dateutil (the README test command does)";

/// Sends `input` (one JSON value per case) to `tests/dateutil/<script>` and returns the
/// dateutil version it ran with and one result per case.
pub(crate) fn run(script: &str, input: Vec<Value>) -> (String, Vec<Value>) {
    let path = format!("{}/tests/dateutil/{script}", env!("CARGO_MANIFEST_DIR"));
    let cases = input.len();
    let mut child = Command::new("python3")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {INSTALL}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed ({}): {}; {INSTALL}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} prints JSON: {e}"));
    let version = v["dateutil"].as_str().unwrap_or_default().to_owned();
    let results = v["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), cases, "one result per case");
    (version, results)
}

/// The comparisons were verified against python-dateutil 2.9: a different major version may
/// have different known deviations.
pub(crate) fn assert_verified_version(version: &str) {
    assert!(
        version.starts_with("2."),
        "verified against python-dateutil 2.9; found {version:?}"
    );
}

/// Fails, listing every differing case, unless `failures` is empty; `what` names the cases.
pub(crate) fn assert_none_differ(failures: &[String], cases: usize, what: &str, version: &str) {
    assert!(
        failures.is_empty(),
        "{} of {cases} {what} differ from dateutil {version}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
