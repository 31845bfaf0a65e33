//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

pub fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name))
        .expect("fixture JSON (tests/fixtures/make_fixtures.py writes it)");
    serde_json::from_str(&text).expect("valid JSON")
}

pub fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// ‖out − ref‖ / ‖ref‖.
pub fn rel_err(out: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(out.len(), reference.len(), "lengths differ");
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let norm: f64 = reference.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// The parity bound the project holds every f32 path to.
pub const TOLERANCE: f64 = 1e-4;

pub fn assert_close(out: &[f32], reference: &[f32], what: &str) {
    let err = rel_err(out, reference);
    println!("{what}: relative error {err:.2e}");
    assert!(
        err < TOLERANCE,
        "{what}: relative error {err:.3e} ≥ {TOLERANCE:.0e}"
    );
}

/// True when no keep probability is within 1e-3 of the threshold, so the policy is decided.
pub fn decided(probs: &[f32]) -> bool {
    probs.iter().all(|p| (p - 0.5).abs() > 1e-3)
}

/// Copies the first `keep` bytes of `from` to `to` (a file cut short).
pub fn copy_truncated(from: &std::path::Path, to: &std::path::Path, keep: usize) {
    let bytes = std::fs::read(from).unwrap();
    std::fs::write(to, &bytes[..keep.min(bytes.len())]).unwrap();
}

/// The four summary lines PyTorch printed for a fixture.
pub fn summary_lines(expected: &serde_json::Value) -> Vec<String> {
    expected["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .map(|l| l.as_str().expect("line").to_string())
        .collect()
}

/// Asserts that a run succeeded and printed, first, the four summary lines PyTorch printed.
pub fn assert_prints_summary(out: &std::process::Output, expected: &serde_json::Value) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().take(4).collect();
    assert_eq!(lines, summary_lines(expected));
}

/// The R32_C10 fixture model (zip checkpoint).
pub fn r32_model() -> blockdrop::model::BlockDrop {
    blockdrop::checkpoint::load_model(
        &fixture("r32_c10.pth"),
        None,
        None,
        &candle_core::Device::Cpu,
    )
    .expect("zip checkpoint loads")
    .model
}

/// The 48 fixture images in CIFAR-10's binary format.
pub fn cifar_bin() -> blockdrop::data::Dataset {
    blockdrop::data::Dataset::open(
        &fixture("cifar-10-batches-bin"),
        blockdrop::data::Split::Test,
    )
    .expect("fixture data")
}

/// The kernel paths the parity tests check, each on a model fresh from `make` (train-mode
/// BatchNorm updates running statistics in place, so variants must not share tensors):
/// candle's ops, the fast NHWC kernels, and the fast kernels with BatchNorm folded (the
/// inference default).
pub fn kernel_variants(
    make: impl Fn() -> blockdrop::model::BlockDrop,
) -> Vec<(&'static str, blockdrop::model::BlockDrop)> {
    use blockdrop::kernels::Kernels;
    let with = |kernels, fold| {
        let mut model = make();
        model.set_kernels(kernels).expect("kernels set");
        if fold {
            model.fold_batchnorm().expect("BatchNorm folds");
        }
        model
    };
    vec![
        ("stock", with(Kernels::Stock, false)),
        ("fast", with(Kernels::Fast, false)),
        ("fast, folded", with(Kernels::Fast, true)),
    ]
}

/// The blockdrop binary run with `args`.
pub fn blockdrop(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Command output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as the `&str` an argument list takes.
pub fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// With `BLOCKDROP_ISA` set (as `.ci/run` sets it to rerun tests on each path), the kernels
/// must run on exactly that path: a test that took another would pass checking nothing new.
pub fn assert_forced_isa() {
    use blockdrop::kernels::isa::{Isa, ENV};
    let active = Isa::active();
    match std::env::var(ENV) {
        Ok(forced) => assert!(
            active.name().eq_ignore_ascii_case(forced.trim()),
            "{ENV}={forced} but the kernels run on {active}"
        ),
        Err(_) => assert_eq!(active, Isa::detected()),
    }
    println!("kernels on the {active} path");
}

/// Every regular file under `dir` (relative to it) with its length and a hash of its bytes
/// (streamed, so a large file costs no memory here: the hostile test measures the memory of
/// the processes this one starts, which begin with this one's), and every folder, link, pipe
/// or device with none (never read: a pipe would block, `/dev/zero` never ends): what a run
/// must leave exactly as it was.
pub fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<PathBuf, Option<(u64, u64)>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(dir).unwrap().to_path_buf();
            let kind = entry.file_type().unwrap();
            out.insert(relative, kind.is_file().then(|| content_hash(&path)));
            if kind.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// A file's length and 64-bit FNV-1a hash, read in blocks.
fn content_hash(path: &std::path::Path) -> (u64, u64) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (u64::MAX, 0);
    };
    let (mut len, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    let mut block = vec![0u8; 1 << 16];
    while let Ok(n) = file.read(&mut block) {
        if n == 0 {
            break;
        }
        len += n as u64;
        for &b in &block[..n] {
            hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (len, hash)
}

/// `blockdrop eval` of the R32_C10 fixture model (`r32_c10.pth`) on `data`, with `extra` flags.
pub fn eval_r32_c10(data: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let model = fixture("r32_c10.pth");
    let mut args = vec![
        "eval",
        "--model",
        path_str(&model),
        "--data",
        path_str(data),
    ];
    args.extend_from_slice(extra);
    blockdrop(&args)
}
