//! Cost tables (`profile --cost FILE.json`; docs/formats.md, "Cost tables"): the measured
//! median time of every block, the stem, the head and the policy network at the batch size
//! profiled, with each one's FLOPs and where it was measured. A user can also write one by
//! hand, for a device they cannot run here.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::exec::Stage;
use crate::profile::ProfileReport;

/// The format's version; a reader refuses others.
pub const VERSION: u32 = 1;
/// A cost table larger than this is refused (a 1,000-block network needs ~100 KB).
const MAX_BYTES: u64 = 1 << 20;
/// More blocks than this is not a network this tool builds.
const MAX_BLOCKS: usize = 10_000;
/// Bounds on a stage's figures (a day in µs; a thousand times the largest network's FLOPs),
/// so sums over 10,000 blocks stay finite.
const MAX_US: f64 = 1e11;
const MAX_FLOPS: f64 = 1e16;
/// Bounds on the batch and thread counts a table may state.
const MAX_BATCH: usize = 1 << 20;
const MAX_THREADS: usize = 1 << 16;

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
        Self::parse(path, &crate::input::read_file(path)?)
    }

    /// A cost table from `bytes` (read from `path`, which errors name), checked as [`read`]
    /// describes.
    ///
    /// [`read`]: CostTable::read
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<CostTable> {
        let table: CostTable = serde_json::from_slice(bytes)
            .map_err(|e| Error::bad_input(path, format!("not a cost table: {e}")))?;
        table
            .check()
            .map_err(|problem| Error::bad_input(path, problem))?;
        Ok(table)
    }

    /// Reads a cost table and checks that it is `config`'s (name and number of blocks).
    pub fn read_for(path: &Path, config: &Config) -> Result<CostTable> {
        let table = CostTable::read(path)?;
        table.check_for(config, path)?;
        Ok(table)
    }

    /// Whether this table is of `config`: its name and its number of blocks.
    pub fn describes(&self, config: &Config) -> bool {
        self.config == config.name && self.blocks.len() == config.num_blocks()
    }

    /// [`CostTable::describes`] as an error naming `path` and both configurations.
    pub fn check_for(&self, config: &Config, path: &Path) -> Result<()> {
        if !self.describes(config) {
            return Err(Error::bad_input(
                path,
                format!(
                    "is a cost table of {} with {} blocks, the model is {} with {}",
                    self.config,
                    self.blocks.len(),
                    config.name,
                    config.num_blocks()
                ),
            ));
        }
        Ok(())
    }

    /// Predicted µs per image of the BlockDrop path that keeps block k at rate
    /// `keep_rates[k]` (0 or 1 for one image, the keep rate for a set): policy network, stem,
    /// head and the kept blocks' costs, divided by the batch the table was measured at.
    pub fn path_us(&self, keep_rates: &[f64]) -> f64 {
        let blocks: f64 = self
            .blocks
            .iter()
            .zip(keep_rates)
            .map(|(b, rate)| b.us * rate)
            .sum();
        (self.policy.us + self.stem.us + self.head.us + blocks) / self.batch.max(1) as f64
    }

    /// Predicted µs per image of the full network (no policy network).
    pub fn full_us(&self) -> f64 {
        let blocks: f64 = self.blocks.iter().map(|b| b.us).sum();
        (self.stem.us + self.head.us + blocks) / self.batch.max(1) as f64
    }

    /// Where the table was measured, in a few words: `cpu, fast (avx2), 2 threads, batch 1`.
    pub fn measured_on(&self) -> String {
        format!(
            "{}, {}, {} thread{}, batch {}",
            self.device,
            self.kernels,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.batch
        )
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
            for (what, v, max) in [("us", cost.us, MAX_US), ("flops", cost.flops, MAX_FLOPS)] {
                if !(v.is_finite() && (0.0..=max).contains(&v)) {
                    return Err(format!(
                        "{name}'s {what} is {v}, not a cost from 0 to {max:e}"
                    ));
                }
            }
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(format!(
                "gives a batch of {} (1 to {MAX_BATCH})",
                self.batch
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(format!(
                "gives {} threads (1 to {MAX_THREADS})",
                self.threads
            ));
        }
        if self.blocks.iter().all(|c| c.us == 0.0) {
            return Err("gives every block a time of 0".into());
        }
        Ok(())
    }
}

/// A model's latency predicted from a cost table: the BlockDrop path (at the records' keep
/// rates) and the full network, per image.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedLatency {
    pub path_us: f64,
    pub full_us: f64,
    /// Where the table was measured ([`CostTable::measured_on`]).
    pub measured_on: String,
}

impl PredictedLatency {
    /// The prediction for images that keep block k at rate `keep_rates[k]`.
    pub fn of(table: &CostTable, keep_rates: &[f64]) -> Self {
        Self {
            path_us: table.path_us(keep_rates),
            full_us: table.full_us(),
            measured_on: table.measured_on(),
        }
    }

    /// `eval`'s line: `Predicted latency: 937.2 µs/img (full network 1637.4 µs, 0.572×) from
    /// a cost table measured on cpu, fast (avx2), 2 threads, batch 1`.
    pub fn line(&self) -> String {
        format!(
            "Predicted latency: {:.1} µs/img (full network {:.1} µs, {:.3}×) from a cost table measured on {}",
            self.path_us,
            self.full_us,
            self.path_us / self.full_us.max(f64::MIN_POSITIVE),
            self.measured_on
        )
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
        let mut t = table();
        t.batch = 0;
        assert!(t.check().is_err());
        let mut t = table();
        t.batch = usize::MAX;
        assert!(t.check().unwrap_err().contains("batch"));
        let mut t = table();
        t.threads = 0;
        assert!(t.check().is_err());
        // Finite but so large that sums would overflow.
        let mut t = table();
        t.blocks[0].us = 1e308;
        assert!(t.check().unwrap_err().contains("block 0's us"));
    }

    /// Policy, stem and head always run; blocks count by their keep rate; all per image.
    #[test]
    fn predictions_add_the_fixed_stages_and_the_kept_blocks() {
        let mut t = table();
        let none = vec![0.0; 15];
        assert_eq!(t.path_us(&none), 30.0);
        let mut half = vec![0.0; 15];
        half[..4].fill(0.5);
        assert_eq!(t.path_us(&half), 30.0 + 20.0);
        assert_eq!(t.full_us(), 20.0 + 150.0);
        t.batch = 10;
        assert_eq!(t.path_us(&[1.0; 15]), (30.0 + 150.0) / 10.0);
        let config = Config::by_name("R32_FMNIST").unwrap();
        assert!(t.check_for(&config, Path::new("t.json")).is_ok());
        let other = Config::by_name("R110_C10").unwrap();
        let err = t.check_for(&other, Path::new("t.json")).unwrap_err();
        assert!(err.to_string().contains("R110_C10"), "{err}");
    }
}
