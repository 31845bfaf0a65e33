//! A training run's folder, which reproduces itself (docs/formats.md, "Training run folders"):
//!
//! - `config.json`: every flag, the model configuration, the data path, the seed, the crate
//!   version;
//! - `metrics.csv`: one row per finished epoch;
//! - `last.safetensors` / `best.safetensors`: model files (any command's `--model` reads them);
//! - `state.safetensors`: model, optimiser state and position, for `--resume` (after a stop
//!   signal, a position inside an epoch: [`Partial`]);
//! - `cost.json`: the cost table the reward weighs blocks by (`--cost FILE.json` runs only).
//!
//! Every file is replaced atomically, so a kill at any moment leaves the last complete epoch
//! loadable.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::atomic::write_bytes_atomic;
use crate::checkpoint::native;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::FolderLock;
use crate::train::TrainStage;

pub const CONFIG: &str = "config.json";
pub const METRICS: &str = "metrics.csv";
pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";
pub const STATE: &str = "state.safetensors";
/// The cost table a `--cost FILE.json` run's reward was computed from (a copy).
pub const COST_TABLE: &str = "cost.json";
/// Bounds on what `--resume` reads back: a run writes about 100 bytes of metrics per epoch
/// and a few kilobytes of configuration.
pub const MAX_METRICS_BYTES: u64 = 64 << 20;
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Whose limit those caps are, as a refusal says it.
pub const RUN_WRITES: &str = "a run writes";

/// Paths in `config.json`: a JSON string when the path is UTF-8, else `{"bytes": [...]}`
/// (Unix paths are bytes; a run folder must reproduce itself whatever its names).
pub mod path_json {
    use std::path::{Path, PathBuf};

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Bytes { bytes: Vec<u8> },
    }

    fn repr(path: &Path) -> Repr {
        match path.to_str() {
            Some(text) => Repr::Text(text.to_string()),
            None => Repr::Bytes {
                bytes: path.as_os_str().as_encoded_bytes().to_vec(),
            },
        }
    }

    fn path(repr: Repr) -> Result<PathBuf, String> {
        match repr {
            Repr::Text(text) => Ok(PathBuf::from(text)),
            #[cfg(unix)]
            Repr::Bytes { bytes } => {
                use std::os::unix::ffi::OsStringExt;
                Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
            }
            #[cfg(not(unix))]
            Repr::Bytes { bytes } => String::from_utf8(bytes)
                .map(PathBuf::from)
                .map_err(|_| "a path of non-UTF-8 bytes".to_string()),
        }
    }

    pub fn serialize<S: Serializer>(p: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        repr(p).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        path(Repr::deserialize(deserializer)?).map_err(D::Error::custom)
    }

    pub fn to_value(p: &Path) -> serde_json::Value {
        serde_json::to_value(repr(p)).unwrap_or_default()
    }

    pub fn from_value(value: &serde_json::Value) -> Option<PathBuf> {
        path(Repr::deserialize(value).ok()?).ok()
    }
}

/// `config.json`: what a run was started with, which `--resume` continues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig<O> {
    pub stage: TrainStage,
    /// The configuration's name.
    pub config: String,
    #[serde(with = "path_json")]
    pub data: PathBuf,
    /// The version of blockdrop that started the run.
    pub version: String,
    /// The policy input pool when it is not the configuration's own (`--policy-input-pool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_input_pool: Option<usize>,
    /// The stage's options (its flags, defaults filled in).
    pub options: O,
}

impl<O> RunConfig<O> {
    pub fn new(stage: TrainStage, config: &Config, data: &Path, options: O) -> Self {
        Self {
            stage,
            config: config.name.clone(),
            data: data.to_path_buf(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            policy_input_pool: config.policy_input_pool_override(),
            options,
        }
    }
}

impl<O: DeserializeOwned> RunConfig<O> {
    /// The configuration saved in `dir`'s `config.json`, which must be a `stage` run.
    pub fn from_saved(saved: serde_json::Value, dir: &Path, stage: TrainStage) -> Result<Self> {
        let bad = |what: String| Error::bad_input(dir.join(CONFIG), what);
        let found = serde_json::from_value::<TrainStage>(saved["stage"].clone())
            .map_err(|_| bad(format!("names no known stage ({})", saved["stage"])))?;
        if found != stage {
            return Err(bad(format!("is a {found} run, not {stage}")));
        }
        serde_json::from_value(saved)
            .map_err(|e| bad(format!("not a {stage} run's configuration: {e}")))
    }
}

/// One finished epoch. Policy columns are empty for the base stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub reward: Option<f64>,
    pub block_usage_mean: Option<f64>,
    pub block_usage_std: Option<f64>,
    pub unique_policies: Option<usize>,
    pub images_per_s: f64,
    pub wall_s: f64,
    /// Policy stages: the greedy policy's mean share of the block cost the reward counts.
    pub cost_share_mean: Option<f64>,
}

/// The first line of `metrics.csv`.
pub const METRICS_HEADER: &str = "epoch,lr,train_loss,train_accuracy,test_accuracy,reward,block_usage_mean,block_usage_std,unique_policies,images_per_s,wall_s,cost_share_mean";
/// The header of runs written before `cost_share_mean` (their rows read with it empty).
pub const METRICS_HEADER_V1: &str = "epoch,lr,train_loss,train_accuracy,test_accuracy,reward,block_usage_mean,block_usage_std,unique_policies,images_per_s,wall_s";

impl EpochMetrics {
    fn csv_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        format!(
            "{},{:.6e},{:.6},{:.6},{:.6},{},{},{},{},{:.1},{:.1},{}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_accuracy,
            self.test_accuracy,
            opt(self.reward),
            opt(self.block_usage_mean),
            opt(self.block_usage_std),
            self.unique_policies
                .map_or(String::new(), |u| u.to_string()),
            self.images_per_s,
            self.wall_s,
            opt(self.cost_share_mean)
        )
    }
}

/// How far an epoch had got when a stop signal saved the run: its batches done, its random
/// generators' states and its running sums, so the resumed epoch ends as an uninterrupted one
/// would. Stored as `state.safetensors` metadata (docs/formats.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    pub batches_done: usize,
    pub augment_rng: u64,
    pub sample_rng: u64,
    pub seen: usize,
    pub correct: usize,
    /// Summed per-image loss.
    pub loss: f64,
    /// Policy stages: summed reward and kept blocks.
    pub policy: Option<(f64, f64)>,
    /// Seconds spent training the epoch's batches so far.
    pub train_s: f64,
}

/// The metadata keys of a [`Partial`] (f64 values print with Rust's shortest round trip, so
/// they read back bit for bit).
const PARTIAL_KEYS: [&str; 9] = [
    "batches_done",
    "augment_rng",
    "sample_rng",
    "seen",
    "correct",
    "loss",
    "policy_reward",
    "policy_blocks",
    "train_s",
];

impl Partial {
    fn metadata(&self) -> Vec<(String, String)> {
        let (reward, blocks) = self
            .policy
            .map_or((String::new(), String::new()), |(r, b)| {
                (r.to_string(), b.to_string())
            });
        let values = [
            self.batches_done.to_string(),
            self.augment_rng.to_string(),
            self.sample_rng.to_string(),
            self.seen.to_string(),
            self.correct.to_string(),
            self.loss.to_string(),
            reward,
            blocks,
            self.train_s.to_string(),
        ];
        PARTIAL_KEYS
            .iter()
            .map(|k| k.to_string())
            .zip(values)
            .collect()
    }

    /// The partial epoch `metadata` describes; `None` when it holds none (an epoch boundary).
    fn read(metadata: &BTreeMap<String, String>, path: &Path) -> Result<Option<Self>> {
        if !metadata.contains_key(PARTIAL_KEYS[0]) {
            return Ok(None);
        }
        let text = |key: &str| -> Result<&str> {
            metadata
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| Error::bad_input(path, format!("metadata `{key}` missing")))
        };
        fn parsed<T: std::str::FromStr>(text: &str, key: &str, path: &Path) -> Result<T> {
            text.parse().map_err(|_| {
                let shown = crate::error::shown(text, 40);
                Error::bad_input(path, format!("metadata `{key}` is `{shown}`, not a number"))
            })
        }
        // A diverged run's sums are NaN or infinite: what it wrote, kept as it was.
        let float = |key: &str| -> Result<f64> { parsed(text(key)?, key, path) };
        let policy = match (text("policy_reward")?, text("policy_blocks")?) {
            ("", "") => None,
            _ => Some((float("policy_reward")?, float("policy_blocks")?)),
        };
        Ok(Some(Self {
            batches_done: parsed(text("batches_done")?, "batches_done", path)?,
            augment_rng: parsed(text("augment_rng")?, "augment_rng", path)?,
            sample_rng: parsed(text("sample_rng")?, "sample_rng", path)?,
            seen: parsed(text("seen")?, "seen", path)?,
            correct: parsed(text("correct")?, "correct", path)?,
            loss: float("loss")?,
            policy,
            train_s: float("train_s")?,
        }))
    }
}

/// Where a resumed run picks up.
pub struct Resumed {
    /// Epochs finished.
    pub epochs_done: usize,
    /// How far the next epoch had got, when a stop signal saved the run inside it.
    pub partial: Option<Partial>,
    pub optimizer_steps: u64,
    /// The best test metric so far (what `best.safetensors` holds).
    pub best: f64,
    pub model: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
}

pub struct Run {
    pub dir: PathBuf,
    rows: Vec<String>,
    /// Held while the run is open: one process per run folder.
    _lock: FolderLock,
}

impl Run {
    /// A new run in `dir`, which must not exist or be empty (a run never writes among files
    /// it did not write).
    pub fn create(dir: &Path, config: &impl Serialize) -> Result<Self> {
        if dir.join(STATE).exists() || dir.join(CONFIG).exists() {
            return Err(Error::bad_input(
                dir,
                "holds a training run already: pass --resume to continue it, or choose another --out",
            ));
        }
        // A folder is empty for a new run when it holds nothing, or only the lock of a run
        // killed before its config.json was written.
        let foreign = |entry: &std::fs::DirEntry| {
            let name = entry.file_name();
            name != crate::lock::LOCK && !name.as_encoded_bytes().starts_with(b".config.json.tmp-")
        };
        if std::fs::read_dir(dir)
            .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| foreign(&e))))
        {
            return Err(Error::bad_input(
                dir,
                "is a folder with files in it; a new run needs a new or empty --out folder",
            ));
        }
        let text = serde_json::to_string_pretty(config)
            .map_err(|e| Error::bad_input(dir, format!("cannot write config.json: {e}")))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = FolderLock::acquire(dir)?;
        write_bytes_atomic(&dir.join(CONFIG), text.as_bytes())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            rows: Vec::new(),
            _lock: lock,
        })
    }

    /// An existing run and its `config.json`.
    pub fn open(dir: &Path) -> Result<(Self, serde_json::Value)> {
        let path = dir.join(CONFIG);
        if !path.is_file() {
            return Err(Error::bad_input(
                dir,
                format!("is not a training run folder (no {CONFIG})"),
            ));
        }
        // Read before the lock is taken, so that a folder whose configuration cannot be read
        // gains no lock file; a run never rewrites it.
        let text = crate::input::read_text_capped(&path, MAX_CONFIG_BYTES, RUN_WRITES)?
            .ok_or_else(|| Error::bad_input(dir, format!("lost its {CONFIG}")))?;
        let config = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&path, format!("not a run's config.json: {e}")))?;
        let metrics = dir.join(METRICS);
        let read_metrics =
            || crate::input::read_text_capped(&metrics, MAX_METRICS_BYTES, RUN_WRITES);
        // Checked before the lock (a pipe or an oversized file is refused with no lock file
        // made), read under it: another process may finish an epoch until then.
        read_metrics()?;
        let lock = FolderLock::acquire(dir)?;
        let rows = match read_metrics()? {
            Some(text) => {
                // Rows of the previous format gain the new last column, empty.
                let old = text.lines().next().map(str::trim_end) == Some(METRICS_HEADER_V1);
                let pad = if old { "," } else { "" };
                text.lines()
                    .skip(1)
                    .map(|row| format!("{row}{pad}"))
                    .collect()
            }
            None => Vec::new(),
        };
        Ok((
            Self {
                dir: dir.to_path_buf(),
                rows,
                _lock: lock,
            },
            config,
        ))
    }

    /// The saved state, or `None` when no epoch has finished yet. Metrics rows of epochs
    /// after it (written before a crash) are dropped.
    pub fn resume(&mut self, device: &Device) -> Result<Option<Resumed>> {
        let path = self.dir.join(STATE);
        if !path.exists() {
            self.rows.clear();
            return Ok(None);
        }
        let bytes = crate::input::read_file(&path)?;
        let (tensors, metadata) = native::read(&path, &bytes, device)?;
        let number = |key: &str| -> Result<f64> {
            metadata
                .get(key)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| Error::bad_input(&path, format!("metadata `{key}` missing")))
        };
        let epochs_done = number("epochs_done")?;
        let partial = Partial::read(&metadata, &path)?;
        // A run stopped inside its first epoch has finished none.
        let least = if partial.is_some() { 0.0 } else { 1.0 };
        if !(least..=1e9).contains(&epochs_done) || epochs_done.fract() != 0.0 {
            return Err(Error::bad_input(
                &path,
                format!("metadata `epochs_done` is {epochs_done}, not a number of epochs"),
            ));
        }
        let epochs_done = epochs_done as usize;
        let (mut model, mut optimizer) = (HashMap::new(), HashMap::new());
        for (name, t) in tensors {
            if let Some(rest) = name.strip_prefix("model.") {
                model.insert(rest.to_string(), t);
            } else if let Some(rest) = name.strip_prefix("optim.") {
                optimizer.insert(rest.to_string(), t);
            }
        }
        self.rows.truncate(epochs_done);
        Ok(Some(Resumed {
            epochs_done,
            partial,
            optimizer_steps: number("optimizer_steps")? as u64,
            best: number("best")?,
            model,
            optimizer,
        }))
    }

    /// Records a finished epoch: metrics row, `last` (and `best` when `is_best`), then the
    /// resume state last, so a state file never runs ahead of the files it describes.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_epoch(
        &mut self,
        metrics: &EpochMetrics,
        model: &BTreeMap<String, Tensor>,
        model_metadata: &BTreeMap<String, String>,
        optimizer: BTreeMap<String, Tensor>,
        optimizer_steps: u64,
        best: f64,
        is_best: bool,
    ) -> Result<()> {
        self.rows.truncate(metrics.epoch);
        self.rows.push(metrics.csv_row());
        let mut csv = String::from(METRICS_HEADER);
        for row in &self.rows {
            csv.push('\n');
            csv.push_str(row);
        }
        csv.push('\n');
        write_bytes_atomic(&self.dir.join(METRICS), csv.as_bytes())?;
        native::write(&self.dir.join(LAST), model, model_metadata)?;
        if is_best {
            native::write(&self.dir.join(BEST), model, model_metadata)?;
        }
        let position = Position {
            epochs_done: metrics.epoch + 1,
            optimizer_steps,
            best,
        };
        self.write_state(model, optimizer, &position, None)
    }

    /// Saves the state of a run stopped inside epoch `position.epochs_done` (0-based) after
    /// `partial.batches_done` of its batches. Only `state.safetensors` changes: the metrics
    /// and model files still describe the last finished epoch.
    pub fn save_partial(
        &mut self,
        model: &BTreeMap<String, Tensor>,
        optimizer: BTreeMap<String, Tensor>,
        position: &Position,
        partial: &Partial,
    ) -> Result<()> {
        self.write_state(model, optimizer, position, Some(partial))
    }

    fn write_state(
        &self,
        model: &BTreeMap<String, Tensor>,
        optimizer: BTreeMap<String, Tensor>,
        position: &Position,
        partial: Option<&Partial>,
    ) -> Result<()> {
        let mut state: BTreeMap<String, Tensor> = model
            .iter()
            .map(|(k, v)| (format!("model.{k}"), v.clone()))
            .collect();
        state.extend(
            optimizer
                .into_iter()
                .map(|(k, v)| (format!("optim.{k}"), v)),
        );
        let mut meta = BTreeMap::from([
            ("epochs_done".to_string(), position.epochs_done.to_string()),
            (
                "optimizer_steps".to_string(),
                position.optimizer_steps.to_string(),
            ),
            ("best".to_string(), position.best.to_string()),
        ]);
        meta.extend(partial.into_iter().flat_map(Partial::metadata));
        native::write(&self.dir.join(STATE), &state, &meta)
    }
}

/// The counters a resume state records beside the tensors.
pub struct Position {
    pub epochs_done: usize,
    pub optimizer_steps: u64,
    /// The best score so far (what `best.safetensors` holds; −∞ before any epoch).
    pub best: f64,
}
