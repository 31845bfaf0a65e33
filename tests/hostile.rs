//! Hostile and careless inputs through the command line: every case of
//! `tests/fixtures/make_hostile.py` must end in exit code 2 with one line on stderr naming the
//! file or flag, within a bound of time and memory, leaving no file behind.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Peak memory a case may take (the child's own, from its rusage).
const MAX_RSS_BYTES: u64 = 1 << 30;
/// A case taking longer than this is hanging (each takes well under a second).
const MAX_CPU: Duration = Duration::from_secs(10);
/// A case still running after this long is hung: it is killed (and then fails its CPU or exit
/// check). Wall time is only this guard, never a pass criterion: two busy cores stretch it.
const HANG_GUARD: Duration = Duration::from_secs(120);

struct Finished {
    code: Option<i32>,
    stderr: String,
    max_rss_bytes: u64,
    wall: Duration,
    /// User plus system CPU time, from the child's rusage.
    cpu: Duration,
}

/// Runs the binary in `cwd`, waiting with `wait4` for its peak memory and CPU time; kills it
/// past [`HANG_GUARD`].
// The child is reaped by `wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[String], cwd: &Path) -> Finished {
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start blockdrop");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child; status and usage are valid for writing.
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            break;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Finished {
        code,
        stderr: reader.join().unwrap(),
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    }
}

#[test]
fn every_hostile_input_is_exit_2_one_line_bounded_and_leaves_nothing() {
    let corpus = tempfile::tempdir().unwrap();
    let made = Command::new("python3")
        .arg(fixture("make_hostile.py"))
        .arg(corpus.path())
        .arg(asset("default.safetensors"))
        .status()
        .expect("python3 runs the corpus generator");
    assert!(made.success(), "make_hostile.py failed");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.path().join("cases.json")).unwrap())
            .unwrap();
    let sample = asset("fashion-mnist-sample");
    let fixtures = fixture("");
    let mut failures = Vec::new();
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dir = corpus.path().join(name);
        let args: Vec<String> = case["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap()
                    .replace("{dir}", dir.to_str().unwrap())
                    .replace("{sample}", sample.to_str().unwrap())
                    .replace(
                        "{fixtures}",
                        fixtures.to_str().unwrap().trim_end_matches('/'),
                    )
            })
            .collect();
        let before = snapshot(&dir);
        let run = run_measured(&args, &dir);
        let after = snapshot(&dir);
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let needle = case["names"].as_str().unwrap();
        let mut problems = Vec::new();
        if run.code != Some(2) {
            problems.push(format!("exit code {:?}", run.code));
        }
        if lines.len() != 1 || !lines[0].contains(needle) {
            problems.push(format!("stderr is not one line naming {needle}"));
        }
        if run.max_rss_bytes >= MAX_RSS_BYTES {
            problems.push(format!("peak RSS {} MiB", run.max_rss_bytes >> 20));
        }
        if run.cpu > MAX_CPU {
            problems.push(format!("took {:.1} s of CPU", run.cpu.as_secs_f64()));
        }
        if before != after {
            let left: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
            let lost: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
            let changed: Vec<_> = before
                .iter()
                .filter(|(k, v)| after.get(*k).is_some_and(|w| w != *v))
                .map(|(k, _)| k)
                .collect();
            problems.push(format!("left {left:?}, lost {lost:?}, changed {changed:?}"));
        }
        eprintln!(
            "{name}: exit {:?}, {:.2} s, {} MiB: {}",
            run.code,
            run.wall.as_secs_f64(),
            run.max_rss_bytes >> 20,
            lines.first().unwrap_or(&"")
        );
        if !problems.is_empty() {
            failures.push(format!(
                "{name}: {} | {}",
                problems.join("; "),
                run.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Unmounts a test's tmpfs however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A report to a full disk and to a read-only one: exit 2, one line naming the folder the user
/// asked for (not the hidden one it is built in) and the problem, and nothing left on the disk.
/// Mounting a small tmpfs needs root: skipped, with the reason printed, otherwise.
#[test]
fn a_full_or_read_only_disk_is_exit_2_naming_the_report_folder() {
    // SAFETY: geteuid reads the process's user id; it cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let sample = asset("fashion-mnist-sample");
    for (options, problem) in [("size=300k", "No space left"), ("size=1m,ro", "Read-only")] {
        let disk = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(disk.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: this machine refuses to mount a tmpfs ({options})");
            return;
        }
        let guard = Mounted(disk.path().to_path_buf());
        let (report, records) = (disk.path().join("report"), disk.path().join("r.parquet"));
        let export = [
            "export",
            "--data",
            path_str(&sample),
            "--out",
            path_str(&report),
            "--no-profile",
            "--no-tradeoff",
        ];
        let eval = [
            "eval",
            "--data",
            path_str(&sample),
            "--records",
            path_str(&records),
            "--no-baselines",
        ];
        // A full disk fills during the report's figures; the records are too small to.
        let mut runs = vec![(blockdrop(&export), &report)];
        if options.contains("ro") {
            runs.push((blockdrop(&eval), &records));
        }
        let left: Vec<_> = std::fs::read_dir(disk.path()).unwrap().flatten().collect();
        drop(guard);
        for (run, out) in runs {
            let stderr = text(&run.stderr);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(run.status.code(), Some(2), "{options}: {stderr}");
            assert_eq!(lines.len(), 1, "{options}: {stderr}");
            assert!(
                lines[0].contains(path_str(out)) && lines[0].contains(problem),
                "{options}: {stderr}"
            );
            assert!(
                !lines[0].contains(".blockdrop-") && !lines[0].contains(".tmp-"),
                "{options}: names a hidden file: {stderr}"
            );
        }
        assert!(left.is_empty(), "{options}: left {left:?}");
    }
}
