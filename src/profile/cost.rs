//! Cost tables (`profile --cost FILE.json`; docs/formats.md, "Cost tables"): the measured
//! median time of every block, the stem, the head and the policy network at the batch size
//! profiled, with each one's FLOPs and where it was measured. A user can also write one by
//! hand, for a device they cannot run here.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::Stage;
use crate::profile::ProfileReport;

/// The format's version; a reader refuses others.
pub const VERSION: u32 = 1;
/// A cost table larger than this is refused (a 1,000-block network needs ~100 KB).
const MAX_BYTES: u64 = 1 << 20;
/// More blocks than this is not a network this tool builds.
const MAX_BLOCKS: usize = 10_000;

/// One stage's cost: median microseconds per batch, and FLOPs per batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageCost {
    pub us: f64,
    pub flops: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTable {
    /// `blockdrop` when this tool wrote it (then a later run may replace it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
    pub version: u32,
    pub config: String,
    pub device: String,
    /// The instruction-set path and kernels (`fast (avx2)`, `stock`, or the user's words).
    pub kernels: String,
    pub threads: usize,
    pub batch: usize,
    pub policy: StageCost,
    pub stem: StageCost,
    pub head: StageCost,
    pub blocks: Vec<StageCost>,
}

impl CostTable {
    /// The table of a profile (its per-stage medians), on `threads` threads.
    pub fn from_profile(report: &ProfileReport, threads: usize) -> CostTable {
        let cost = |stage: Stage| {
            report.stages.iter().find(|s| s.stage == stage).map_or(
                StageCost {
                    us: 0.0,
                    flops: 0.0,
                },
                |s| StageCost {
                    us: s.median_us,
                    flops: s.flops as f64,
                },
            )
        };
        let blocks = report
            .stages
            .iter()
            .filter(|s| matches!(s.stage, Stage::Block(_)))
            .map(|s| StageCost {
                us: s.median_us,
                flops: s.flops as f64,
            })
            .collect();
        CostTable {
            written_by: Some(crate::output::WRITER.to_string()),
            version: VERSION,
            config: report.config.clone(),
            device: report.device.clone(),
            kernels: report.kernels.clone(),
            threads,
            batch: report.batch,
            policy: cost(Stage::Policy),
            stem: cost(Stage::Stem),
            head: cost(Stage::Head),
            blocks,
        }
    }

    /// Writes the table as JSON (temp file, then rename); an existing file is replaced only
    /// when blockdrop wrote it.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::output::check_replaceable(path, crate::output::json_is_ours)?;
        crate::atomic::write_atomic(path, |file| {
            serde_json::to_writer_pretty(file, self)
                .map_err(|e| Error::bad_input(path, format!("cannot write the cost table: {e}")))
        })
    }

    /// Reads and checks a cost table: this version, at least one block, every figure finite
    /// and not negative, the block costs not all zero.
    pub fn read(path: &Path) -> Result<CostTable> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_file() && meta.len() > MAX_BYTES {
            return Err(Error::bad_input(
                path,
                format!(
                    "is {} bytes; a cost table is at most {MAX_BYTES}",
                    meta.len()
                ),
            ));
        }
        let bytes = crate::input::read_file(path)?;
        let table: CostTable = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bad_input(path, format!("not a cost table: {e}")))?;
        table
            .check()
            .map_err(|problem| Error::bad_input(path, problem))?;
        Ok(table)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "is cost-table version {}, this blockdrop reads {VERSION}",
                self.version
            ));
        }
        if self.blocks.is_empty() || self.blocks.len() > MAX_BLOCKS {
            return Err(format!(
                "lists {} blocks (1 to {MAX_BLOCKS} expected)",
                self.blocks.len()
            ));
        }
        let stages = [
            ("policy", &self.policy),
            ("stem", &self.stem),
            ("head", &self.head),
        ];
        let named = stages.iter().map(|(n, c)| (n.to_string(), **c)).chain(
            self.blocks
                .iter()
                .enumerate()
                .map(|(k, c)| (format!("block {k}"), *c)),
        );
        for (name, cost) in named {
            for (what, v) in [("us", cost.us), ("flops", cost.flops)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!("{name}'s {what} is {v}, not a finite cost ≥ 0"));
                }
            }
        }
        if self.blocks.iter().all(|c| c.us == 0.0) {
            return Err("gives every block a time of 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> CostTable {
        let stage = StageCost {
            us: 10.0,
            flops: 1e6,
        };
        CostTable {
            written_by: None,
            version: VERSION,
            config: "R32_FMNIST".into(),
            device: "cpu".into(),
            kernels: "fast (avx2)".into(),
            threads: 2,
            batch: 1,
            policy: stage,
            stem: stage,
            head: stage,
            blocks: vec![stage; 15],
        }
    }

    #[test]
    fn hand_written_tables_are_checked() {
        assert!(table().check().is_ok());
        let mut t = table();
        t.blocks[3].us = f64::NAN;
        assert!(t.check().unwrap_err().contains("block 3's us"));
        let mut t = table();
        t.blocks.clear();
        assert!(t.check().is_err());
        let mut t = table();
        t.version = 2;
        assert!(t.check().unwrap_err().contains("version 2"));
        let mut t = table();
        t.stem.flops = -1.0;
        assert!(t.check().unwrap_err().contains("stem's flops"));
    }
}
