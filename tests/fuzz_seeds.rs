//! Every committed fuzz seed through its target's body (`fuzz/src/lib.rs`, included here):
//! the seeds stay inputs the targets accept without a panic, and the bodies compile with the
//! main crate on every CI run (the fuzz crate itself is outside the workspace).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

/// A fuzz target's body: the bytes the fuzzer would give it.
type Body = fn(&[u8]);

/// Every target under `fuzz/fuzz_targets/` with its body.
const TARGETS: [(&str, Body); 11] = [
    ("checkpoint", targets::checkpoint),
    ("cifar", targets::cifar),
    ("cost_table", targets::cost_table),
    ("idx", targets::idx),
    ("image", targets::image),
    ("metrics", targets::metrics),
    ("parquet", targets::parquet),
    ("pickle", targets::pickle),
    ("provenance", targets::provenance),
    ("records", targets::records),
    ("run_folder", targets::run_folder),
];

#[test]
fn every_seed_runs_through_its_target() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed, "every fuzz target is replayed here");
    let mut replayed = 0;
    for (name, body) in TARGETS {
        for (path, bytes) in seeds(name) {
            println!("{name}: {}", path.display());
            body(&bytes);
            replayed += 1;
        }
    }
    println!("{replayed} seeds replayed");
}
