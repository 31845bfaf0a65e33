//! Numbers as the reference's Python prints them (`'%.3f'`, `'%.2E'`), so the summary lines
//! match it to the character.

/// Python's `'%.3f'` (NaN as `nan`).
pub fn fixed3(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        format!("{x:.3}")
    }
}

/// Python's `'%.2E'`: two decimals, a signed exponent of at least two digits (`1.81E+08`).
pub fn sci2(x: f64) -> String {
    if x.is_nan() {
        return "NAN".into();
    }
    let s = format!("{x:.2E}");
    let (mantissa, exponent) = s.split_once('E').unwrap_or((&s, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}E{sign}{:02}", exponent.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scientific_format_matches_python() {
        assert_eq!(sci2(1.81e8), "1.81E+08");
        assert_eq!(sci2(3.4349e7), "3.43E+07");
        assert_eq!(sci2(1.25e10), "1.25E+10");
        assert_eq!(sci2(0.0), "0.00E+00");
        assert_eq!(sci2(4.2e-3), "4.20E-03");
    }

    #[test]
    fn fixed_format_rounds_to_three_decimals() {
        assert_eq!(fixed3(0.12345), "0.123");
        assert_eq!(fixed3(f64::NAN), "nan");
    }
}
