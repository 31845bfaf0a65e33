//! The fuzz targets' bodies, one function per target: the targets under `fuzz_targets/` call
//! them on the fuzzer's bytes, and the main crate's `tests/fuzz_seeds.rs` replays every
//! committed seed through them (it includes this file), so the seeds stay valid inputs and
//! the bodies compile with the main crate's tests.
#![allow(clippy::missing_panics_doc)]

use blockdrop::analysis::Analysis;
use blockdrop::config::{Config, NAMES};
use blockdrop::data::cifar::{parse_file, Variant};
use blockdrop::data::{decode_image_bytes, transform};
use blockdrop::profile::cost::{CostTable, PredictedLatency};
use blockdrop::records::provenance::Provenance;
use blockdrop::records::schema::{column, from_frame};
use blockdrop::train::cost::BlockCost;
use candle_core::Device;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Any bytes given as a model file, through the whole load: format detection, the pickle and
/// zip readers, name mapping, configuration inference, the finiteness check and the model
/// build. It must return a model or an error, never panic, hang or allocate beyond what the
/// bytes justify.
pub fn checkpoint(data: &[u8]) {
    let _ =
        blockdrop::checkpoint::load_model_bytes(Path::new("fuzz.pth"), data, None, &Device::Cpu);
}

/// Any bytes as a CIFAR batch file of each variant: the binary records (CIFAR-10 and -100)
/// and the python version's pickled dict of numpy arrays.
pub fn cifar(data: &[u8]) {
    for variant in [
        Variant::Cifar10Bin,
        Variant::Cifar100Bin,
        Variant::Cifar10Py,
        Variant::Cifar100Py,
    ] {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        let _ = parse_file(Path::new("batch"), variant, data, &mut pixels, &mut labels);
    }
}

/// Any bytes given as a cost table (`eval|compare|export --cost`, `train … --cost`): a checked
/// table or an error naming the file, never a panic; and a checked table only ever predicts
/// finite latencies and reward shares.
pub fn cost_table(data: &[u8]) {
    let Ok(table) = CostTable::parse(Path::new("cost.json"), data) else {
        return;
    };
    let k = table.blocks.len();
    for keep in [
        vec![1.0; k],
        vec![0.0; k],
        (0..k).map(|i| (i % 2) as f64).collect(),
    ] {
        let predicted = PredictedLatency::of(&table, &keep);
        assert!(predicted.path_us.is_finite() && predicted.full_us.is_finite());
    }
    let cost = BlockCost::Measured {
        table: "cost.json".into(),
        blocks: table.blocks.iter().map(|b| b.us).collect(),
    };
    if cost.check(k).is_ok() {
        let keep: Vec<bool> = (0..k).map(|i| i % 3 != 0).collect();
        let share = cost.share(&keep);
        assert!(share.is_finite() && (0.0..=1.0).contains(&share), "{share}");
    }
}

/// Any bytes as an IDX images file and labels file (raw or gzip), split at the first byte's
/// position: the header is read first and nothing is inflated past what it declares.
pub fn idx(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize * rest.len() / 255).min(rest.len());
    let (images, labels) = rest.split_at(at);
    let _ = blockdrop::data::idx::parse_pair(
        (Path::new("images"), images.to_vec()),
        (Path::new("labels"), labels.to_vec()),
    );
}

/// Any bytes as an image file, decoded within the reader's limits, then through every
/// configuration's test transform (the ImageNet resize and crop among them).
pub fn image(data: &[u8]) {
    let Ok(image) = decode_image_bytes(Path::new("image"), data) else {
        return;
    };
    for name in NAMES {
        if let Ok(config) = Config::by_name(name) {
            let _ = transform::apply(&image, &config.transform);
        }
    }
}

/// Any text given as a training run's `metrics.csv` (the `runs` command, the workbench's Runs
/// view, a run folder given to `compare`): rows or an error naming the line, never a panic.
pub fn metrics(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = blockdrop::runs::parse_metrics(Path::new("metrics.csv"), text);
    }
}

/// Any bytes as a pickle stream, with every global allowed (the widest the reader gets), then
/// the accessors the checkpoint and CIFAR readers use, over every object it made.
pub fn pickle(data: &[u8]) {
    let Ok(p) = blockdrop::pickle::read(data, |_, _| true) else {
        return;
    };
    for id in 0..p.objects.len() {
        let _ = p.as_bytes(id);
        let _ = p.as_int(id);
        let _ = p.as_seq(id);
        let _ = p.dict_get(id, "data");
        let _ = p.global_name(id);
    }
}

/// Any key-value metadata on a records file (`eval --resume`, `merge`, `export --records`):
/// a provenance or an error naming the file, never a panic; and a provenance's range always
/// lies within its images.
pub fn provenance(data: &[u8]) {
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
}

/// Any policy strings and block counts in a records frame (`export --records`, `merge`,
/// `eval --resume` read them from Parquet): records whose policies all have one width of 0s
/// and 1s matching their block counts, or an error naming the file, never a panic; and what
/// is read always analyses.
pub fn records(data: &[u8]) {
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
            Column::new(
                column::LABEL.into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(column::PRED.into(), vec![0u32; n]),
            Column::new(
                column::CORRECT.into(),
                rows.iter().map(|r| r.2 == 0).collect::<Vec<_>>(),
            ),
            Column::new(
                column::POLICY.into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Column::new(
                column::BLOCKS.into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ),
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
}

/// Any bytes as a Parquet records file (`export --records`, `merge`, `eval --resume`), read
/// as blockdrop reads one (`output::frame::read_parquet`: the footer and page checks, then
/// polars without the embedded Arrow schema), then the records schema. Panics polars raises
/// on corrupt input are caught there and become the file's error (`foreign_panic`), so only
/// an abort, an uncaught panic, a hang or an allocation beyond the checks' budget is a crash
/// (run with `-rss_limit_mb=2048`).
pub fn parquet(data: &[u8]) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // Quiet while a reader runs, the fuzzer's own hook (abort) otherwise.
    HOOK.call_once(blockdrop::foreign_panic::install_hook);
    let mut cursor = std::io::Cursor::new(data);
    let len = data.len() as u64;
    let footer_ok = blockdrop::output::parquet_bounds::check_footer(&mut cursor, len).is_ok();
    let file_ok = blockdrop::output::parquet_bounds::check_file(&mut cursor, len).is_ok();
    assert!(
        footer_ok || !file_ok,
        "a file whose pages pass has a footer that passes"
    );
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("records.parquet");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(df) = blockdrop::output::frame::read_parquet(&path) {
        let _ = from_frame(&df, &path);
    }
}

/// Any bytes as a training run folder `train … --resume` opens: the first two bytes give the
/// length of `config.json`, the next two that of `metrics.csv`, and the rest is
/// `state.safetensors` (absent when empty). The folder is opened, its configuration read as
/// each stage's, and its state resumed: a run or an error naming the file, never a panic.
pub fn run_folder(data: &[u8]) {
    use blockdrop::train::run::{Run, RunConfig};
    use blockdrop::train::{base::BaseOptions, policy::PolicyOptions, TrainStage};
    let take = |data: &[u8]| -> (Vec<u8>, usize) {
        let n = data
            .get(..2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
        let body = data.get(2..).unwrap_or_default();
        (body[..n.min(body.len())].to_vec(), 2 + n.min(body.len()))
    };
    let (config, used) = take(data);
    let rest = data.get(used..).unwrap_or_default();
    let (metrics, used) = take(rest);
    let state = rest.get(used..).unwrap_or_default();
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes);
    if write("config.json", &config).is_err()
        || write("metrics.csv", &metrics).is_err()
        || (!state.is_empty() && write("state.safetensors", state).is_err())
    {
        return;
    }
    let Ok((mut run, saved)) = Run::open(dir.path()) else {
        return;
    };
    let _ = RunConfig::<BaseOptions>::from_saved(saved.clone(), dir.path(), TrainStage::Base);
    let _ = RunConfig::<PolicyOptions>::from_saved(saved, dir.path(), TrainStage::Finetune);
    let _ = run.resume(&Device::Cpu);
}
