//! Plain tables: aligned columns for a terminal, Markdown and CSV.

/// A terminal cell longer than this keeps its start and end around a `…` (a model path of
/// thousands of characters would otherwise set every row's width).
const MAX_CELL_CHARS: usize = 160;

/// `cell` as a terminal column shows it: control characters escaped, the middle elided past
/// [`MAX_CELL_CHARS`] (the end of a path, its file name, stays).
fn fitted(cell: &str) -> String {
    let chars: Vec<char> = cell.chars().flat_map(crate::error::escaped).collect();
    if chars.len() <= MAX_CELL_CHARS {
        return chars.into_iter().collect();
    }
    let head = MAX_CELL_CHARS / 4;
    let tail = MAX_CELL_CHARS - head - 1;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// `cell` padded with spaces to `width` characters (no format width: those stop at 65,535).
fn padded(cell: &str, width: usize) -> String {
    let mut out = cell.to_string();
    out.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(cell.chars().count()),
    ));
    out
}

/// Columns padded to their widest cell, two spaces apart. A row for which `runs_on` holds is
/// printed as its first two cells only, the second running on past the columns (a failure's
/// reason), and does not widen them.
pub fn aligned(
    header: &[&str],
    rows: &[Vec<String>],
    runs_on: impl Fn(&[String]) -> bool,
) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| fitted(cell)).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .filter(|r| c == 0 || !runs_on(r))
                .filter_map(|r| r.get(c).map(|cell| cell.chars().count()))
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| padded(c, w))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
    let mut text = line(&header);
    for row in &rows {
        text.push('\n');
        if runs_on(row) {
            let rest = row.get(1).map_or("", String::as_str);
            text.push_str(&format!("{}  {rest}", padded(&row[0], widths[0])));
        } else {
            text.push_str(&line(row));
        }
    }
    text
}

/// A Markdown table; `|` and line breaks inside cells are escaped.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let escape = |c: &str| c.replace('|', "\\|").replace(['\n', '\r'], " ");
    let mut md = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        md.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    md
}

/// A CSV table (RFC 4180 quoting), ending in a newline.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut text = header.join(",");
    for row in rows {
        text.push('\n');
        text.push_str(&row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_of_a_hundred_thousand_characters_is_elided_not_a_panic() {
        let path = format!("/{}/model.safetensors", "d".repeat(100_000));
        let rows = vec![
            vec![path, "0.9".to_string()],
            vec!["b\nforged".to_string(), "1".to_string()],
        ];
        let text = aligned(&["model", "acc"], &rows, |_| false);
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest < MAX_CELL_CHARS + 10, "{widest}");
        assert!(
            text.contains("…") && text.contains("model.safetensors"),
            "{text}"
        );
        assert!(text.contains("b\\nforged"), "{text}");
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn columns_align_and_a_failure_runs_on() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["bb".to_string(), "failed: a long reason".to_string()],
        ];
        let text = aligned(&["name", "n"], &rows, |r| r[1].starts_with("failed"));
        assert_eq!(text, "name  n\na     1\nbb    failed: a long reason");
        assert_eq!(
            markdown(&["x"], &[vec!["a|b\nc".into()]]),
            "| x |\n|---|\n| a\\|b c |\n"
        );
    }
}
