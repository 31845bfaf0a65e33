//! Crash consistency of every writer: each command that writes a file or folder is killed
//! (SIGKILL, which no handler sees) at many points of its run, repeatedly into the same
//! folder. After every kill the output's final name holds nothing or a whole, readable
//! output; nothing else in the folder changed but blockdrop's own temporary names; and the
//! next complete run succeeds and leaves no temporary name behind.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use blockdrop::rng::Rng;
use common::*;

/// Kills per writer; the delays are drawn over the writer's measured run time.
const KILLS: usize = 12;

/// Whether `name` is one of blockdrop's temporary names for the output `target`: an atomic
/// file's `.{target}.tmp-PID-N`, or a report folder's `.{target}.blockdrop-init-PID` and
/// `.{target}.blockdrop-tmp-PID` while it is built (docs/output.md).
fn is_temporary(name: &str, target: &str) -> bool {
    name.strip_prefix(&format!(".{target}."))
        .is_some_and(|rest| {
            ["tmp-", "blockdrop-init-", "blockdrop-tmp-"]
                .iter()
                .any(|tag| rest.starts_with(tag))
        })
}

/// Runs `args` to completion; it must succeed.
fn complete(args: &[String]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    start.elapsed()
}

/// Starts `args` and kills it after `delay`.
fn killed_after(args: &[String], delay: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap();
}

/// Kills the writer `args` (whose output is `dir/target`) at `KILLS` points of its run, and
/// checks the folder after each; `whole` says whether a final output is whole and readable.
fn kill_repeatedly(dir: &Path, target: &str, args: &[String], whole: impl Fn(&Path) -> bool) {
    let user_file = dir.join("notes.txt");
    std::fs::write(&user_file, "the user's, never touched").unwrap();
    // One complete run measures the span the kills are spread over; its output is removed
    // (by the test, as a user would) so that the kills also hit a first write.
    let span = complete(args);
    remove(&dir.join(target));
    let before = snapshot(dir);
    let seed = 0x5eed_u64 ^ target.len() as u64;
    let mut rng = Rng::new(seed);
    let (mut finished, mut mid_write) = (0, 0);
    for kill in 0..KILLS {
        // Spread over the whole run and a little beyond, so that some kills find it finished.
        let delay = span.mul_f64(f64::from(rng.uniform()) * 1.2);
        killed_after(args, delay);
        let output = dir.join(target);
        if output.exists() {
            assert!(
                whole(&output),
                "{target}: after a kill at {delay:?} (kill {kill}, seed {seed}) the final name \
                 holds a partial output"
            );
            finished += 1;
            // Half the time the user removes it, so that later kills hit a first write as
            // well as a replacement.
            if kill % 2 == 0 {
                remove(&output);
            }
        }
        let now = snapshot(dir);
        for (path, was) in &before {
            assert_eq!(
                now.get(path),
                Some(was),
                "{}: changed by a killed {target} writer",
                path.display()
            );
        }
        if names(dir).iter().any(|n| is_temporary(n, target)) {
            mid_write += 1;
        }
        for name in names(dir) {
            assert!(
                name == target
                    || is_temporary(&name, target)
                    || before.contains_key(Path::new(&name)),
                "{name}: left by a killed {target} writer, not one of its temporary names"
            );
        }
    }
    println!(
        "{target}: {KILLS} kills over {span:?}: {finished} found the output whole, \
         {mid_write} found a temporary name of a write cut short"
    );
    // The next complete run succeeds (replacing its own output) and cleans up after the
    // killed ones.
    complete(args);
    assert!(
        whole(&dir.join(target)),
        "{target}: the complete run's output"
    );
    let left: Vec<String> = names(dir)
        .into_iter()
        .filter(|n| is_temporary(n, target))
        .collect();
    assert!(
        left.is_empty(),
        "{target}: left behind after a complete run: {left:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&user_file).unwrap(),
        "the user's, never touched"
    );
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn remove(path: &Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).unwrap();
    } else if path.exists() {
        std::fs::remove_file(path).unwrap();
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn records_are_whole(path: &Path, images: usize) -> bool {
    blockdrop::records::load(&[path]).is_ok_and(|r| r.len() == images)
}

#[test]
fn eval_records_merge_and_profile_files_are_whole_or_absent_after_any_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = asset("fashion-mnist-sample");
    let records = dir.path().join("records.parquet");
    kill_repeatedly(
        dir.path(),
        "records.parquet",
        &strings(&[
            "eval",
            "--data",
            path_str(&data),
            "--limit",
            "200",
            "--no-baselines",
            "--records",
            path_str(&records),
        ]),
        |p| records_are_whole(p, 200),
    );
    let part = dir.path().join("part.parquet");
    complete(&strings(&[
        "eval",
        "--data",
        path_str(&data),
        "--limit",
        "200",
        "--shard",
        "1/1",
        "--records",
        path_str(&part),
    ]));
    let merged = dir.path().join("merged.parquet");
    kill_repeatedly(
        dir.path(),
        "merged.parquet",
        &strings(&["merge", "--records", path_str(&merged), path_str(&part)]),
        |p| records_are_whole(p, 200),
    );
    let profile = dir.path().join("profile.json");
    kill_repeatedly(
        dir.path(),
        "profile.json",
        &strings(&[
            "profile",
            "--data",
            path_str(&data),
            "--images",
            "4",
            "--repeat",
            "2",
            "--out",
            path_str(&profile),
        ]),
        |p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| {
                    v["images"].as_array().is_some_and(|i| i.len() == 4)
                        && v["written_by"] == "blockdrop"
                })
        },
    );
}

#[test]
fn import_and_report_folders_are_whole_or_absent_after_any_kill() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("imported.safetensors");
    kill_repeatedly(
        dir.path(),
        "imported.safetensors",
        &strings(&[
            "import",
            "--torch",
            path_str(&fixture("r32_c10.pth")),
            "--out",
            path_str(&model),
        ]),
        |p| blockdrop::checkpoint::load_model(p, None, None, &candle_core::Device::Cpu).is_ok(),
    );
    let runs = dir.path().join("curves");
    let run = asset("training/fmnist-base");
    kill_repeatedly(
        dir.path(),
        "curves",
        &strings(&["runs", path_str(&run), "--out", path_str(&runs)]),
        |p| p.join("training.png").is_file() && p.join(".blockdrop-report").is_file(),
    );
}
