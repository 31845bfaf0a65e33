//! Reading training run folders for display (docs/formats.md, "Training run folders"): the
//! stage and configuration from `config.json`, the epochs from `metrics.csv`, and which model
//! file stands for the run. Read only: no lock is taken, so a run still training can be
//! watched (a row being appended is skipped until it is whole).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::run::{
    EpochMetrics, BEST, CONFIG, LAST, MAX_CONFIG_BYTES, MAX_METRICS_BYTES, METRICS, RUN_WRITES,
};

/// A training run folder as read for display.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// The folder's name, for tables and legends.
    pub name: String,
    /// `base`, `curriculum` or `finetune`.
    pub stage: String,
    /// The model configuration's name.
    pub config: String,
    pub epochs: Vec<EpochMetrics>,
}

impl RunFolder {
    /// Whether `path` looks like a run folder (a folder with a `config.json`).
    pub fn is_run(path: &Path) -> bool {
        path.is_dir() && path.join(CONFIG).is_file()
    }

    /// Reads `dir`'s `config.json` and `metrics.csv` (absent: no epoch finished yet).
    pub fn read(dir: &Path) -> Result<RunFolder> {
        if !Self::is_run(dir) {
            return Err(Error::bad_input(
                dir,
                format!("is not a training run folder (no {CONFIG})"),
            ));
        }
        let config_path = dir.join(CONFIG);
        let text = crate::input::read_text_capped(&config_path, MAX_CONFIG_BYTES, RUN_WRITES)?
            .ok_or_else(|| Error::bad_input(&config_path, "disappeared while being read"))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&config_path, format!("not a run's config.json: {e}")))?;
        let field = |name: &str| config[name].as_str().unwrap_or("?").to_string();
        let metrics_path = dir.join(METRICS);
        let epochs =
            match crate::input::read_text_capped(&metrics_path, MAX_METRICS_BYTES, RUN_WRITES)? {
                Some(text) => parse_metrics(&metrics_path, &text)?,
                None => Vec::new(),
            };
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            name: display_name(dir),
            stage: field("stage"),
            config: field("config"),
            epochs,
        })
    }

    /// The model that stands for the run: `best.safetensors`, else `last.safetensors`.
    pub fn model_file(&self) -> Result<PathBuf> {
        [BEST, LAST]
            .iter()
            .map(|name| self.dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::bad_input(
                    &self.dir,
                    format!("holds no model yet (neither {BEST} nor {LAST})"),
                )
            })
    }

    /// The epoch with the best test accuracy (base) or reward (policy stages).
    pub fn best_epoch(&self) -> Option<&EpochMetrics> {
        let score = |m: &EpochMetrics| m.reward.unwrap_or(m.test_accuracy);
        self.epochs
            .iter()
            .max_by(|a, b| score(a).total_cmp(&score(b)))
    }
}

/// A path's last component (or the whole path when it has none), for tables and legends.
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `metrics.csv` rows; a last line without its newline (being appended) is left out.
pub fn parse_metrics(path: &Path, text: &str) -> Result<Vec<EpochMetrics>> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    // The piece after the last newline is empty, or a row still being written.
    lines.pop();
    let mut rows = lines.into_iter().enumerate();
    let fields = match rows.next() {
        Some((_, header)) if header.trim_end() == crate::train::run::METRICS_HEADER => 12,
        Some((_, header)) if header.trim_end() == crate::train::run::METRICS_HEADER_V1 => 11,
        Some(_) => {
            return Err(Error::bad_input(
                path,
                "line 1 is not the metrics header this version writes",
            ))
        }
        None => return Ok(Vec::new()),
    };
    rows.filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            parse_row(line.trim_end(), fields)
                .map_err(|what| Error::bad_input(path, format!("line {}: {what}", i + 1)))
        })
        .collect()
}

/// One row of `fields` fields (12, or 11 in runs written before `cost_share_mean`).
fn parse_row(line: &str, fields: usize) -> std::result::Result<EpochMetrics, String> {
    let cells: Vec<&str> = line.split(',').collect();
    if cells.len() != fields {
        return Err(format!("{} fields, not {fields}", cells.len()));
    }
    let number = |i: usize| -> std::result::Result<f64, String> {
        cells[i]
            .parse::<f64>()
            .map_err(|_| format!("field {} is not a number: {:?}", i + 1, cells[i]))
    };
    let optional = |i: usize| -> std::result::Result<Option<f64>, String> {
        if cells[i].is_empty() {
            Ok(None)
        } else {
            number(i).map(Some)
        }
    };
    let epoch = cells[0]
        .parse::<usize>()
        .map_err(|_| format!("the epoch is not a count: {:?}", cells[0]))?;
    let unique = if cells[8].is_empty() {
        None
    } else {
        Some(
            cells[8]
                .parse::<usize>()
                .map_err(|_| format!("unique policies is not a count: {:?}", cells[8]))?,
        )
    };
    Ok(EpochMetrics {
        epoch,
        lr: number(1)?,
        train_loss: number(2)?,
        train_accuracy: number(3)?,
        test_accuracy: number(4)?,
        reward: optional(5)?,
        block_usage_mean: optional(6)?,
        block_usage_std: optional(7)?,
        unique_policies: unique,
        images_per_s: number(9)?,
        wall_s: number(10)?,
        cost_share_mean: if fields > 11 { optional(11)? } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_being_appended_is_left_out_and_bad_rows_name_their_line() {
        let path = Path::new("metrics.csv");
        let header = crate::train::run::METRICS_HEADER;
        let text =
            format!("{header}\n0,1e-4,0.5,0.8,0.9,0.1,7.0,1.0,5,100.0,10.0,0.45\n1,1e-4,0.4");
        let rows = parse_metrics(path, &text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].unique_policies, Some(5));
        assert_eq!(rows[0].cost_share_mean, Some(0.45));
        let base = format!("{header}\n0,0.1,0.9,0.6,0.7,,,,,300.0,20.0,\n");
        assert_eq!(parse_metrics(path, &base).unwrap()[0].reward, None);
        let bad = format!("{header}\n0,0.1,x,0.6,0.7,,,,,300.0,20.0,\n");
        let err = parse_metrics(path, &bad).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("field 3"), "{err}");
        assert!(parse_metrics(path, "nonsense\n").is_err());
        // Runs written before the cost share column still read.
        let v1 = crate::train::run::METRICS_HEADER_V1;
        let old = format!("{v1}\n0,1e-4,0.5,0.8,0.9,0.1,7.0,1.0,5,100.0,10.0\n");
        let rows = parse_metrics(path, &old).unwrap();
        assert_eq!(
            (rows[0].block_usage_mean, rows[0].cost_share_mean),
            (Some(7.0), None)
        );
        assert!(parse_metrics(path, "").unwrap().is_empty());
    }
}
