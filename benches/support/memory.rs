//! This process's memory, as the benches report it.

/// A figure of /proc/self/status (`VmRSS:`, `VmHWM:` …) in MiB; NaN off Linux.
pub fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(key))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The process's peak resident set so far, in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}
