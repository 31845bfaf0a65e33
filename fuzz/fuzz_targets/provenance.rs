//! Any key-value metadata on a records file (`eval --resume`, `merge`, `export --records`):
//! a provenance or an error naming the file, never a panic; and a provenance's range always
//! lies within its images.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use blockdrop::records::provenance::Provenance;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One `key=value` per line; known keys gain the prefix so the fuzzer reaches them.
    let metadata: BTreeMap<String, String> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (format!("blockdrop.{k}"), v.to_string()))
        .collect();
    if let Ok((provenance, _)) = Provenance::from_entries(&metadata, Path::new("part.parquet")) {
        let range = provenance.range();
        assert!(range.start <= range.end && range.end <= provenance.images);
        let _ = provenance.mismatch(&provenance.clone());
        let _ = provenance.entries(true);
    }
});
