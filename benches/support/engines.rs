//! Runs benches/engines.py (PyTorch eager and ONNX Runtime on the same work) with the fixture
//! venv's Python and the same thread count, when that venv exists.

use std::collections::HashMap;
use std::path::Path;

/// Measurements by key (`torch R110_C10 b64` → ms/img, …), or `None` without the venv.
pub fn run() -> anyhow::Result<Option<HashMap<String, f64>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/fixtures/.venv/bin/python");
    if !python.exists() {
        println!(
            "\n(PyTorch / ONNX Runtime comparison skipped: run tests/fixtures/setup_venv.sh first)"
        );
        return Ok(None);
    }
    let threads = candle_core::utils::get_num_threads().to_string();
    let out = std::process::Command::new(python)
        .arg(root.join("benches/engines.py"))
        .arg(&threads)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "benches/engines.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut values = HashMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.rsplit_once(' ') {
            if let Ok(v) = value.parse::<f64>() {
                values.insert(key.to_string(), v);
            }
        }
    }
    Ok(Some(values))
}
