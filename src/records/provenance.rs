//! Where a Parquet records file came from, kept in its key-value metadata
//! (docs/formats.md, "Per-image records"): the model, the data, the threshold, how many
//! images the whole evaluation covers, which part of it this file holds (`eval --shard K/N`),
//! and whether that part is finished. `eval --resume` continues a file only when all of it
//! matches; `merge` joins parts only when they belong to one evaluation.

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fingerprint::Fnv;
use crate::output::frame::{is_parquet, parquet_metadata};
use crate::records::shard::Shard;
use crate::records::Record;

/// Key prefix of the provenance entries.
const PREFIX: &str = "blockdrop.";

/// What a records file is part of. Two parts of one evaluation differ only in `shard`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The model file's FNV-1a fingerprint (with its base file's, if any), and its name.
    pub model: String,
    pub model_name: String,
    pub config: String,
    /// The dataset's fingerprint: its format, split, size and labels (paths may differ from
    /// machine to machine), and its path as given.
    pub data: String,
    pub data_path: String,
    pub threshold: String,
    /// Images the whole evaluation covers (the first N of the split).
    pub images: usize,
    /// Whether the records keep the base network's logits (`eval --logits`).
    pub logits: bool,
    /// This file's part, `None` for a whole evaluation.
    pub shard: Option<Shard>,
}

impl Provenance {
    /// The metadata entries, with whether the part is `complete`.
    pub fn entries(&self, complete: bool) -> Vec<(String, String)> {
        let mut entries = vec![
            ("model", self.model.clone()),
            ("model_name", self.model_name.clone()),
            ("config", self.config.clone()),
            ("data", self.data.clone()),
            ("data_path", self.data_path.clone()),
            ("threshold", self.threshold.clone()),
            ("images", self.images.to_string()),
            ("logits", self.logits.to_string()),
            ("complete", complete.to_string()),
        ];
        if let Some(shard) = self.shard {
            entries.push(("shard", shard.to_string()));
        }
        entries
            .into_iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v))
            .collect()
    }

    /// The provenance in `metadata` (read from `path`), and whether the part is complete.
    pub fn from_entries(metadata: &BTreeMap<String, String>, path: &Path) -> Result<(Self, bool)> {
        let get = |key: &str| -> Result<String> {
            metadata
                .get(&format!("{PREFIX}{key}"))
                .cloned()
                .ok_or_else(|| {
                    Error::bad_input(
                        path,
                        format!(
                            "carries no `{PREFIX}{key}`: only the records `eval --records \
                             X.parquet` and `merge --records` write carry what this needs (a \
                             report's records.parquet does not)"
                        ),
                    )
                })
        };
        let images = get("images")?
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| Error::bad_input(path, "`blockdrop.images` is not a count ≥ 1"))?;
        let flag = |key: &str| -> Result<bool> {
            match get(key)?.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(Error::bad_input(
                    path,
                    format!("`{PREFIX}{key}` is {other:?}, not true or false"),
                )),
            }
        };
        let logits = flag("logits")?;
        let shard = match metadata.get(&format!("{PREFIX}shard")) {
            Some(text) => Some(
                Shard::parse(text)
                    .map_err(|e| Error::bad_input(path, format!("`blockdrop.shard` {e}")))?,
            ),
            None => None,
        };
        let complete = flag("complete")?;
        Ok((
            Self {
                model: get("model")?,
                model_name: get("model_name")?,
                config: get("config")?,
                data: get("data")?,
                data_path: get("data_path")?,
                threshold: get("threshold")?,
                images,
                logits,
                shard,
            },
            complete,
        ))
    }

    /// The dataset indices this file covers.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.shard.map_or(0..self.images, |s| s.range(self.images))
    }

    /// Whether records with this provenance (read from `path`) are of the model with
    /// fingerprint `model` ([`model_fingerprint`]), of configuration `config`, and of
    /// `dataset` (`export --records`).
    pub fn check_source(
        &self,
        model: &str,
        config: &str,
        dataset: &Dataset,
        path: &Path,
    ) -> Result<()> {
        if self.images > dataset.len() {
            return Err(Error::bad_input(
                path,
                format!(
                    "covers {} images, the {} split of --data holds {}",
                    self.images,
                    dataset.split,
                    dataset.len()
                ),
            ));
        }
        let differs = if self.model != model {
            Some(format!("the model {}", self.model_name))
        } else if self.config != config {
            Some(format!("configuration {}", self.config))
        } else if self.data != data_fingerprint(dataset) {
            Some(format!("the data {}", self.data_path))
        } else {
            None
        };
        match differs {
            Some(what) => Err(Error::bad_input(
                path,
                format!(
                    "holds records of {what}, not of --model and --data as given: pass the model and data they were evaluated with"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The first way `other` is not part of the same evaluation as `self` (the shard aside),
    /// as `what: ours vs theirs`.
    pub fn mismatch(&self, other: &Provenance) -> Option<String> {
        let pairs = [
            ("model", &self.model, &other.model),
            ("configuration", &self.config, &other.config),
            ("data", &self.data, &other.data),
            ("threshold", &self.threshold, &other.threshold),
        ];
        if let Some((what, a, b)) = pairs.iter().find(|(_, a, b)| a != b) {
            return Some(format!("{what}: {a} vs {b}"));
        }
        if self.logits != other.logits {
            return Some(format!("--logits: {} vs {}", self.logits, other.logits));
        }
        (self.images != other.images)
            .then(|| format!("images: {} vs {}", self.images, other.images))
    }
}

/// A model's fingerprint: FNV-1a over its file's bytes, then its base file's, if any.
pub fn model_fingerprint(files: &[&[u8]]) -> String {
    let mut hash = Fnv::default();
    for bytes in files {
        hash.update(bytes);
    }
    format!("{:016x}", hash.finish())
}

/// The data's fingerprint: format, split, size and labels (a path may differ between the
/// machines of one cluster).
pub fn data_fingerprint(dataset: &Dataset) -> String {
    let mut hash = Fnv::default();
    for label in dataset.labels() {
        hash.update(&label.to_le_bytes());
    }
    format!(
        "{}:{}:{}:{:016x}",
        dataset.format,
        dataset.split,
        dataset.len(),
        hash.finish()
    )
}

/// What a part file at `path` already holds when an evaluation resumes it.
pub struct Resumed {
    pub records: Vec<Record>,
    /// Images of the part's range.
    pub images: usize,
    pub complete: bool,
}

/// The records a part file holds when `provenance`'s evaluation resumes it; refused when the
/// file is of another evaluation or another part of it.
pub fn resume_part(path: &Path, provenance: &Provenance) -> Result<Resumed> {
    let (records, theirs, complete) = read_part(path)?;
    let differs = provenance.mismatch(&theirs).or_else(|| {
        (theirs.shard != provenance.shard).then(|| {
            let part =
                |s: Option<Shard>| s.map_or("the whole".to_string(), |s| format!("part {s}"));
            format!("{} vs {}", part(provenance.shard), part(theirs.shard))
        })
    });
    if let Some(what) = differs {
        return Err(Error::bad_input(
            path,
            format!(
                "holds records of another evaluation ({what}): resume with the flags it \
                 was started with, or write to another --records"
            ),
        ));
    }
    Ok(Resumed {
        records,
        images: theirs.range().len(),
        complete,
    })
}

/// Whether `path` may take a records file with provenance (Parquet, and writable under the
/// output rule), checked before the work that produces it.
pub fn check_part_target(path: &Path) -> Result<()> {
    if !is_parquet(path) {
        return Err(not_parquet(path));
    }
    crate::output::frame::check_frame_target(path)
}

fn not_parquet(path: &Path) -> Error {
    Error::bad_input(
        path,
        "must end in .parquet: only Parquet records carry the provenance that --resume, merge \
         and export --records check",
    )
}

/// Writes `records` to the Parquet file `path` with `provenance`.
pub fn write_part(
    records: &[Record],
    path: &Path,
    provenance: &Provenance,
    complete: bool,
) -> Result<()> {
    if !is_parquet(path) {
        return Err(not_parquet(path));
    }
    crate::records::schema::write_with(records, path, &provenance.entries(complete))
}

/// A records file with its provenance and whether it is complete. The records must be the
/// first images of its range, in order (as `eval` writes them), with no index twice.
pub fn read_part(path: &Path) -> Result<(Vec<Record>, Provenance, bool)> {
    let (provenance, complete) = Provenance::from_entries(&parquet_metadata(path)?, path)?;
    let config = crate::config::Config::by_name(&provenance.config).map_err(|_| {
        Error::bad_input(
            path,
            format!(
                "names configuration {:?}, which this blockdrop does not know",
                provenance.config
            ),
        )
    })?;
    let records = crate::records::load(&[path])?;
    crate::records::consistency::check_rows(&records, &config, path)?;
    if !records.is_empty() && records.iter().all(|r| r.logits.is_some()) != provenance.logits {
        return Err(Error::bad_input(
            path,
            format!(
                "says `blockdrop.logits` is {}, but its rows {} logits",
                provenance.logits,
                if provenance.logits { "lack" } else { "hold" }
            ),
        ));
    }
    let range = provenance.range();
    if let Some((i, r)) = records
        .iter()
        .enumerate()
        .find(|(i, r)| r.index as usize != range.start + i)
    {
        return Err(Error::bad_input(
            path,
            format!(
                "row {i} holds image {}, not {}: the rows are not this part's images in order",
                r.index,
                range.start + i
            ),
        ));
    }
    if records.len() > range.len() || (complete && records.len() != range.len()) {
        return Err(Error::bad_input(
            path,
            format!(
                "holds {} records for the {} images of its part{}",
                records.len(),
                range.len(),
                if complete {
                    " and says it is complete"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok((records, provenance, complete))
}
