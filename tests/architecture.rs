//! The import rules of docs/architecture.md, read from the source: which room (top-level
//! module of the library) may import which, and no circle between rooms. A change that breaks
//! a rule fails here with the file and the import that broke it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms that show or drive results; no core room may import them.
const UPPER: [&str; 4] = ["tui", "report", "compare", "runs"];
/// Rooms that import nothing from the crate, so they can be tested, benched and fuzzed alone.
const LEAVES: [&str; 6] = ["kernels", "pickle", "process", "rng", "stats", "error"];
/// (room, rooms it must never import): the lower layers know nothing of the higher ones.
const NEVER: [(&str, &[&str]); 6] = [
    ("records", &["eval", "exec", "study", "train", "profile"]),
    ("model", &["exec", "eval", "checkpoint", "study", "train"]),
    ("eval", &["train", "study"]),
    ("analysis", &["exec", "eval", "profile", "study", "train"]),
    ("study", &["train"]),
    ("checkpoint", &["eval", "exec", "train", "study"]),
];

/// Every room's imports: room → imported room → the first file that imports it.
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The library's rooms as `lib.rs` declares them.
fn rooms() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The room a file under `src/` belongs to (`bin` for `main.rs` and `cli/`).
fn room_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    let room = first.trim_end_matches(".rs").to_string();
    if room == "main" || room == "cli" {
        "bin".into()
    } else {
        room
    }
}

/// The code of a file without its comments and its test module (tests may reach anywhere).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rooms `code` names through `prefix::room` or `prefix::{room, …}`.
fn imported(code: &str, prefix: &str, rooms: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let needle = format!("{prefix}::");
    let mut rest = code;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().last();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|n| n.trim().split(['(', ':', ' ']).next().unwrap_or(""))
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| rooms.contains(*n))
                .map(str::to_string),
        );
    }
    found
}

fn graph() -> Graph {
    let rooms = rooms();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut graph = Graph::new();
    for file in files {
        let room = room_of(&file);
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let prefix = if room == "bin" { "blockdrop" } else { "crate" };
        let edges = graph.entry(room.clone()).or_default();
        for target in imported(&code, prefix, &rooms) {
            if target != room {
                edges.entry(target).or_insert_with(|| file.clone());
            }
        }
        if room != "bin" && (code.contains("crate::cli") || code.contains("crate::main")) {
            edges.entry("bin".into()).or_insert(file);
        }
    }
    graph
}

/// Each circle between rooms (a strongly connected set of more than one room), sorted.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    // Rooms that reach each other both ways are on one circle.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(room) = todo.pop() {
            for next in graph.get(&room).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|r| (r, reach(r))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (room, reached) in &reaches {
        let circle: Vec<String> = reached
            .iter()
            .filter(|other| reaches.get(other).is_some_and(|r| r.contains(*room)))
            .cloned()
            .collect();
        if circle.len() > 1 {
            found.insert(circle);
        }
    }
    found.into_iter().collect()
}

/// Every broken rule, as one line naming the file and the import.
fn violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    let mut forbid = |room: &str, target: &str, why: &str| {
        if let Some(file) = graph.get(room).and_then(|e| e.get(target)) {
            found.push(format!(
                "{} ({room}) imports {target}: {why}",
                file.display()
            ));
        }
    };
    for room in graph.keys().filter(|r| *r != "bin") {
        if !UPPER.contains(&room.as_str()) {
            for upper in UPPER {
                forbid(
                    room,
                    upper,
                    "a core room never imports tui, report, compare or runs",
                );
            }
        }
        forbid(
            room,
            "bin",
            "nothing in the library imports the command line",
        );
    }
    forbid("report", "tui", "tui may import report, never the reverse");
    for (room, never) in NEVER {
        for target in never {
            forbid(room, target, "a lower layer never imports a higher one");
        }
    }
    for leaf in LEAVES {
        for target in graph.get(leaf).into_iter().flat_map(|e| e.keys()) {
            forbid(leaf, target, "a leaf imports nothing from the crate");
        }
    }
    for circle in circles(graph) {
        found.push(format!("a circle between rooms: {}", circle.join(" ↔ ")));
    }
    found
}

#[test]
fn the_library_keeps_its_import_rules() {
    let graph = graph();
    for room in ["eval", "records", "study", "report", "kernels", "bin"] {
        assert!(graph.contains_key(room), "no room {room} read from src/");
    }
    // The reading finds imports: these are known to exist.
    for (room, target) in [("report", "study"), ("study", "eval"), ("bin", "study")] {
        assert!(
            graph[room].contains_key(target),
            "{room} → {target} not found: the reader misses imports"
        );
    }
    let broken = violations(&graph);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_checker_finds_a_broken_rule_and_a_circle() {
    let mut graph = Graph::new();
    let file = PathBuf::from("src/records/x.rs");
    let edge = |graph: &mut Graph, from: &str, to: &str| {
        graph
            .entry(from.into())
            .or_default()
            .insert(to.into(), file.clone());
    };
    edge(&mut graph, "records", "eval");
    edge(&mut graph, "eval", "records");
    edge(&mut graph, "kernels", "error");
    edge(&mut graph, "model", "report");
    let broken = violations(&graph);
    let has = |text: &str| broken.iter().any(|b| b.contains(text));
    assert!(has("(records) imports eval"), "{broken:?}");
    assert!(has("(kernels) imports error"), "{broken:?}");
    assert!(has("(model) imports report"), "{broken:?}");
    assert!(has("a circle between rooms: eval ↔ records"), "{broken:?}");
}

#[test]
fn imports_are_read_from_paths_and_groups_but_not_comments() {
    let rooms: BTreeSet<String> = ["eval", "records", "model"].map(String::from).into();
    let code = code_of(
        "use crate::{eval::x, records};\n// crate::model in a comment\nlet a = crate::model::f();\nnotcrate::eval",
    );
    let found = imported(&code, "crate", &rooms);
    assert_eq!(found, rooms);
    let only_comment = code_of("// crate::model\n/// [`crate::eval`]");
    assert!(imported(&only_comment, "crate", &rooms).is_empty());
}
