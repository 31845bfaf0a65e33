//! The committed expected values cannot drift from the scripts that wrote them: every
//! expected-values file under tests/fixtures records `generated_by` (the script's SHA-256, the
//! scripts it imports, and the PyTorch version; tests/fixtures/provenance.py), and a script
//! edited since must be rerun before this passes.

mod common;

use std::path::{Path, PathBuf};

use common::fixture;
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSON files in tests/fixtures (the hostile corpus is written at test time, and the data
/// set folders hold no JSON).
fn expected_value_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(""))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_expected_values_file_names_the_script_that_wrote_it_as_it_is_committed() {
    let files = expected_value_files();
    // flops_reference, fmnist_default_expected, policy_loss_expected, r32_c10_expected and
    // resize_expected: a file that disappears from the list fails here, not silently.
    assert_eq!(files.len(), 5, "{files:?}");
    for file in files {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let record = &value["generated_by"];
        let script = record["script"]
            .as_str()
            .unwrap_or_else(|| panic!("{} records no generated_by.script", file.display()));
        let mut scripts = vec![(script.to_string(), record["sha256"].clone())];
        if let Some(imports) = record["imports"].as_object() {
            scripts.extend(imports.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (script, recorded) in scripts {
            let now = sha256_hex(&repo().join(&script));
            assert_eq!(
                recorded.as_str(),
                Some(now.as_str()),
                "{} was written by {script} as it was before its last edit: rerun it \
                 (tests/fixtures/setup_venv.sh, then tests/fixtures/.venv/bin/python {script})",
                file.display()
            );
        }
        assert!(
            record["torch"].as_str().is_some_and(|v| !v.is_empty()),
            "{} records no torch version",
            file.display()
        );
    }
}
