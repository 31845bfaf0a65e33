//! Flag values are checked here, before any folder is created or any work starts; clap turns
//! a refusal into a one-line error naming the flag (exit code 2).

fn parse_number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))
}

/// A count of one or more (images, repeats, clusters, epochs, …).
pub fn count(s: &str) -> Result<usize, String> {
    match parse_number::<usize>(s)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// Image decoding threads: 1 to 256.
pub fn decode_threads(s: &str) -> Result<usize, String> {
    match count(s)? {
        n if n > 256 => Err("must be at most 256".into()),
        n => Ok(n),
    }
}

/// Batches decoded ahead of the network: 1 to 64 (each is a batch of images in memory).
pub fn batches_ahead(s: &str) -> Result<usize, String> {
    match count(s)? {
        n if n > 64 => Err("must be at most 64".into()),
        n => Ok(n),
    }
}

/// Timed runs per measurement: 1 to 100,000.
pub fn repeats(s: &str) -> Result<usize, String> {
    match count(s)? {
        n if n > 100_000 => Err("must be at most 100000".into()),
        n => Ok(n),
    }
}

/// A training batch: at least 2 (BatchNorm in train mode and the policy's self-critical
/// baseline need more than one image).
pub fn training_batch(s: &str) -> Result<usize, String> {
    match parse_number::<usize>(s)? {
        n if n < 2 => Err("training needs a batch of at least 2 images".into()),
        n => Ok(n),
    }
}

/// A probability threshold in [0, 1].
pub fn threshold(s: &str) -> Result<f32, String> {
    match parse_number::<f32>(s)? {
        t if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err("must be between 0 and 1".into()),
    }
}

/// A fraction in [0, 1] (α, momentum).
pub fn fraction(s: &str) -> Result<f64, String> {
    match parse_number::<f64>(s)? {
        v if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be between 0 and 1".into()),
    }
}

/// A finite number above 0 (learning rates, decay ratios).
pub fn positive(s: &str) -> Result<f64, String> {
    match parse_number::<f64>(s)? {
        v if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a finite number above 0".into()),
    }
}

/// A finite number of 0 or more (weight decay, entropy weight).
pub fn non_negative(s: &str) -> Result<f64, String> {
    match parse_number::<f64>(s)? {
        v if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a finite number of 0 or more".into()),
    }
}

/// Any finite number (the penalty γ).
pub fn finite(s: &str) -> Result<f64, String> {
    match parse_number::<f64>(s)? {
        v if v.is_finite() => Ok(v),
        _ => Err("must be a finite number".into()),
    }
}
