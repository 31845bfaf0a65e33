//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

pub fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name))
        .expect("fixture JSON (tests/fixtures/make_fixtures.py writes it)");
    serde_json::from_str(&text).expect("valid JSON")
}

pub fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// ‖out − ref‖ / ‖ref‖.
pub fn rel_err(out: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(out.len(), reference.len(), "lengths differ");
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let norm: f64 = reference.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// The parity bound the project holds every f32 path to.
pub const TOLERANCE: f64 = 1e-4;

pub fn assert_close(out: &[f32], reference: &[f32], what: &str) {
    let err = rel_err(out, reference);
    println!("{what}: relative error {err:.2e}");
    assert!(
        err < TOLERANCE,
        "{what}: relative error {err:.3e} ≥ {TOLERANCE:.0e}"
    );
}

/// True when no keep probability is within 1e-3 of the threshold, so the policy is decided.
pub fn decided(probs: &[f32]) -> bool {
    probs.iter().all(|p| (p - 0.5).abs() > 1e-3)
}

/// Copies the first `keep` bytes of `from` to `to` (a file cut short).
pub fn copy_truncated(from: &std::path::Path, to: &std::path::Path, keep: usize) {
    let bytes = std::fs::read(from).unwrap();
    std::fs::write(to, &bytes[..keep.min(bytes.len())]).unwrap();
}

/// Asserts that a run succeeded and printed, first, the four summary lines PyTorch printed.
pub fn assert_prints_summary(out: &std::process::Output, expected: &serde_json::Value) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().take(4).collect();
    let want: Vec<&str> = expected["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines, want);
}
