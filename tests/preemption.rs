//! A training run stopped by a signal (SIGTERM, as Slurm and Kubernetes send before they
//! preempt a job; SIGUSR1, as `sbatch --signal` sends) saves where it stands at the next batch
//! boundary and exits 75; resumed with `--resume`, it ends exactly as the uninterrupted run
//! with the same seed: the same metrics (the timing columns aside) and the same weights, bit for
//! bit. The signals come at random moments inside an epoch, as a cluster's would.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use common::*;

/// The exit code of a run stopped by a signal with its state saved.
const STOPPED: i32 = 75;
/// Guards against a hang only: a busy machine may be slow.
const HANG_GUARD: Duration = Duration::from_secs(600);

fn sample() -> PathBuf {
    asset("cifar10-sample")
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs")
}

fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .map(|text| text.lines().skip(1).map(str::to_string).collect())
        .unwrap_or_default()
}

/// metrics.csv without its timing columns (images_per_s, wall_s), which no two runs share.
fn metrics_without_timing(run: &Path) -> Vec<String> {
    metrics(run)
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells.len(), 12, "a metrics row of 12 columns: {row}");
            [&cells[..9], &cells[11..]].concat().join(",")
        })
        .collect()
}

/// A model file's tensors as bits, and its metadata.
fn model_bits(path: &Path) -> (BTreeMap<String, Vec<u32>>, BTreeMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let (tensors, meta) = blockdrop::checkpoint::native::read(path, &bytes, &Device::Cpu).unwrap();
    let bits = tensors
        .into_iter()
        .map(|(name, t)| {
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (name, values.iter().map(|v| v.to_bits()).collect())
        })
        .collect();
    (bits, meta.into_iter().collect())
}

fn state_meta(run: &Path) -> BTreeMap<String, String> {
    model_bits(&run.join("state.safetensors")).1
}

/// A delay in `range` ms that differs from run to run (printed, so a failure can be replayed
/// by hand).
fn random_delay(range: std::ops::Range<u64>) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(range.start + nanos % (range.end - range.start))
}

/// Runs `args` until `rows` epochs are in metrics.csv, then, a random moment later (inside the
/// next epoch), sends `signal`; checks the exit code, the message and how soon it stopped.
/// Returns the batches the stopped epoch had done.
fn stop_after(args: &[&str], run: &Path, rows: usize, signal: libc::c_int) -> usize {
    let mut child = spawn(args);
    let guard = Instant::now() + HANG_GUARD;
    while metrics(run).len() < rows {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before epoch {rows}"
        );
        assert!(
            Instant::now() < guard,
            "no epoch {rows} within {HANG_GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let delay = random_delay(200..900);
    std::thread::sleep(delay);
    let sent = Instant::now();
    // SAFETY: kill sends a signal to the child we spawned; it touches no memory of ours.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let output = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(STOPPED),
        "signal {signal} {delay:?} after epoch {rows}: {stderr}"
    );
    assert!(
        stderr.contains("stopped by a signal") && stderr.contains("--resume"),
        "{stderr}"
    );
    // A bound against a stop that waits for the epoch's end, not a timing test.
    assert!(
        took < Duration::from_secs(60),
        "stopped {took:?} after the signal"
    );
    let meta = state_meta(run);
    assert_eq!(meta["epochs_done"], rows.to_string(), "{meta:?}");
    let batches: usize = meta["batches_done"].parse().unwrap();
    eprintln!(
        "signal {signal} {delay:?} into epoch {}: stopped after {batches} batches in {took:?}",
        rows + 1
    );
    batches
}

/// Trains `new` (a fresh run into `interrupted`) with a SIGTERM inside epoch 2 and a SIGUSR1
/// inside epoch 3, resuming after each, and the same flags uninterrupted into `whole`; both
/// must end the same.
fn assert_stops_resume_exactly(new: &dyn Fn(&Path) -> Vec<String>, dir: &Path, stage: &str) {
    let (interrupted, whole) = (dir.join("interrupted"), dir.join("whole"));
    let epochs = "3";
    let first: Vec<String> = new(&interrupted);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let resume = [
        "train",
        stage,
        "--resume",
        path_str(&interrupted),
        "--epochs",
        epochs,
    ];
    let mut stops = vec![stop_after(&first, &interrupted, 1, libc::SIGTERM)];
    stops.push(stop_after(&resume, &interrupted, 2, libc::SIGUSR1));
    let done = blockdrop(&resume);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(
        stops.iter().any(|&b| b > 0),
        "no stop fell inside an epoch's batches ({stops:?}): nothing partial was resumed"
    );
    let uninterrupted: Vec<String> = new(&whole);
    let uninterrupted: Vec<&str> = uninterrupted.iter().map(String::as_str).collect();
    let out = blockdrop(&uninterrupted);
    assert!(out.status.success(), "{}", text(&out.stderr));

    assert_eq!(metrics(&interrupted).len(), 3);
    assert_eq!(
        metrics_without_timing(&interrupted),
        metrics_without_timing(&whole),
        "metrics after stops at {stops:?} batches"
    );
    for file in ["last.safetensors", "best.safetensors", "state.safetensors"] {
        let (a, b) = (
            model_bits(&interrupted.join(file)),
            model_bits(&whole.join(file)),
        );
        assert_eq!(a.0.len(), b.0.len(), "{file}");
        for (name, bits) in &a.0 {
            assert!(
                bits == &b.0[name],
                "{file}: {name} differs after stops at {stops:?}"
            );
        }
        assert_eq!(a.1, b.1, "{file} metadata");
    }
    // The state after the last epoch is an epoch boundary again: nothing partial is left.
    assert!(!state_meta(&interrupted).contains_key("batches_done"));
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `train STAGE_ARGS… --data SAMPLE --out OUT --epochs EPOCHS` in small batches: 13 of them an
/// epoch on the sample's 300 training images.
fn small_run(stage_args: &[&str], out: &Path, epochs: &str) -> Vec<String> {
    let data = sample();
    let mut args = owned(&["train"]);
    args.extend(owned(stage_args));
    args.extend(owned(&[
        "--data",
        path_str(&data),
        "--out",
        path_str(out),
        "--epochs",
        epochs,
        "--batch-size",
        "24",
        "--test-images",
        "48",
    ]));
    args
}

#[test]
fn a_base_run_stopped_by_signals_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let new = |out: &Path| small_run(&["base", "--config", "R32_C10"], out, "3");
    assert_stops_resume_exactly(&new, tmp.path(), "base");
}

#[test]
fn a_finetuning_run_stopped_by_signals_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let model = asset("cifar10.safetensors");
    let new = |out: &Path| {
        let stage = [
            "finetune",
            "--from",
            path_str(&model),
            "--images-per-epoch",
            "240",
        ];
        let mut args = small_run(&stage, out, "3");
        args.extend(owned(&["--penalty", "-0.5", "--finetune-beta", "0.1"]));
        args
    };
    assert_stops_resume_exactly(&new, tmp.path(), "finetune");
}

/// A state file whose partial epoch cannot belong to the run (more batches than an epoch has,
/// or images that do not add up) is refused with exit 2 naming it, never resumed.
#[test]
fn a_forged_partial_epoch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let args = small_run(&["base", "--config", "R32_C10"], &run, "2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stop_after(&args, &run, 1, libc::SIGTERM);
    let state = run.join("state.safetensors");
    let bytes = std::fs::read(&state).unwrap();
    let (tensors, meta) =
        blockdrop::checkpoint::native::read(&state, &bytes, &Device::Cpu).unwrap();
    let tensors: BTreeMap<String, candle_core::Tensor> = tensors.into_iter().collect();
    for (key, value) in [("batches_done", "999"), ("seen", "7")] {
        let mut forged: BTreeMap<String, String> =
            meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        forged.remove("written_by");
        forged.insert(key.to_string(), value.to_string());
        blockdrop::checkpoint::native::write(&state, &tensors, &forged).unwrap();
        let out = blockdrop(&["train", "base", "--resume", path_str(&run)]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(
            stderr.contains("state.safetensors") && stderr.contains("batches"),
            "{stderr}"
        );
    }
}
