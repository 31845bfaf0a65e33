//! Records checked against the configuration they claim (a part's provenance names it): every
//! row's policy has one decision per block, its label and prediction are classes of the
//! configuration, `correct` agrees with them, and its numbers are finite and in range. A file
//! that fails names itself and the first row that does, so a forged or foreign file never
//! reaches the figures.

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::records::Record;

/// The first problem of `records` (read from `source`) against `config`, as an error.
pub fn check_rows(records: &[Record], config: &Config, source: &Path) -> Result<()> {
    let (blocks, classes) = (config.num_blocks(), config.classes());
    for (row, record) in records.iter().enumerate() {
        if let Some(problem) = row_problem(record, blocks, classes) {
            return Err(Error::bad_input(
                source,
                format!(
                    "row {row} (image {}) {problem}, for {}",
                    record.index, config.name
                ),
            ));
        }
    }
    Ok(())
}

fn row_problem(r: &Record, blocks: usize, classes: usize) -> Option<String> {
    if r.keep.len() != blocks {
        return Some(format!(
            "has a policy of {} decisions where the configuration has {blocks} blocks",
            r.keep.len()
        ));
    }
    if r.probs.len() != blocks {
        return Some(format!(
            "has {} keep probabilities, not {blocks}",
            r.probs.len()
        ));
    }
    for (what, class) in [("label", r.label), ("prediction", r.pred)] {
        if class as usize >= classes {
            return Some(format!("has {what} {class}, beyond the {classes} classes"));
        }
    }
    if r.correct != (r.pred == r.label) {
        return Some("says `correct` where its prediction and label disagree".into());
    }
    if !r.flops.is_finite() || r.flops < 0.0 {
        return Some(format!("has FLOPs {}", r.flops));
    }
    // A sigmoid's output, with room for a last-bit rounding above 1.
    if r.probs.iter().any(|p| !(0.0..=1.0 + 1e-6).contains(p)) {
        return Some("has a keep probability outside 0..1".into());
    }
    match &r.logits {
        Some(logits) if logits.len() != classes => {
            Some(format!("has {} logits, not {classes}", logits.len()))
        }
        Some(logits) if logits.iter().any(|v| !v.is_finite()) => {
            Some("has a logit that is not finite".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            index: 3,
            label: 2,
            pred: 2,
            correct: true,
            keep: vec![true; 15],
            blocks: 15,
            flops: 1e8,
            probs: vec![0.9; 15],
            logits: Some(vec![0.0; 10]),
        }
    }

    /// A change to a valid row, and what the error must then say.
    type Forge = (fn(&mut Record), &'static str);

    #[test]
    fn rows_that_disagree_with_the_configuration_are_named() {
        let config = Config::by_name("R32_C10").unwrap();
        check_rows(&[record()], &config, Path::new("p.parquet")).unwrap();
        let cases: [Forge; 8] = [
            (|r| r.keep.truncate(4), "policy of 4 decisions"),
            (|r| r.probs.push(0.5), "16 keep probabilities"),
            (|r| r.label = 10, "label 10, beyond the 10 classes"),
            (|r| r.pred = 99, "prediction 99"),
            (|r| r.correct = false, "`correct`"),
            (|r| r.flops = f64::NAN, "FLOPs NaN"),
            (|r| r.probs[0] = 1.5, "outside 0..1"),
            (|r| r.logits = Some(vec![f32::INFINITY; 10]), "not finite"),
        ];
        for (forge, needle) in cases {
            let mut bad = record();
            forge(&mut bad);
            let error = check_rows(&[record(), bad], &config, Path::new("p.parquet"))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("p.parquet: row 1 (image 3) ") && error.contains(needle),
                "{needle}: {error}"
            );
        }
    }
}
