//! Any policy strings and block counts in a records frame (`export --records`, `merge`,
//! `eval --resume` read them from Parquet): records whose policies all have one width of 0s
//! and 1s matching their block counts, or an error naming the file, never a panic; and what
//! is read always analyses.
#![no_main]

use std::path::Path;

use blockdrop::analysis::Analysis;
use blockdrop::records::schema::{column, from_frame};
use libfuzzer_sys::fuzz_target;
use polars::prelude::*;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One record per line: `policy blocks label`.
    let rows: Vec<(&str, u32, u32)> = text
        .lines()
        .take(256)
        .map(|line| {
            let mut parts = line.split(' ');
            let policy = parts.next().unwrap_or("");
            let number = |p: Option<&str>| p.and_then(|v| v.parse().ok()).unwrap_or(0);
            (policy, number(parts.next()), number(parts.next()))
        })
        .collect();
    let n = rows.len();
    let probs: Vec<Series> = rows
        .iter()
        .map(|(p, _, _)| Series::new(PlSmallStr::EMPTY, vec![0.5f32; p.len().min(64)]))
        .collect();
    let Ok(df) = DataFrame::new(
        n,
        vec![
            Column::new(column::INDEX.into(), (0..n as u32).collect::<Vec<_>>()),
            Column::new(column::LABEL.into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new(column::PRED.into(), vec![0u32; n]),
            Column::new(column::CORRECT.into(), rows.iter().map(|r| r.2 == 0).collect::<Vec<_>>()),
            Column::new(column::POLICY.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new(column::BLOCKS.into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new(column::FLOPS.into(), vec![1.0f64; n]),
            Column::new(column::PROBS.into(), probs),
        ],
    ) else {
        return;
    };
    if let Ok(records) = from_frame(&df, Path::new("records.parquet")) {
        let analysis = Analysis::of(&records, None).expect("records read back always analyse");
        let grouped: usize = analysis.groups.iter().map(|g| g.members.len()).sum();
        assert_eq!(grouped, records.len());
        assert_eq!(analysis.easy_to_hard.len(), records.len());
    }
});
