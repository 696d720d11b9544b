//! The library's modules import each other without a cycle: read from the sources, each
//! top-level module of `src/` (a file or a folder) is a node, and each `crate::module`
//! path outside test code an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

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

/// The top-level module a file of `src/` belongs to (`None` for the crate root files).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The file's code without its unit tests: `#[cfg(test)]` modules close each file here,
/// and whole files of tests (`tests.rs`, `*_tests.rs`) are left out.
fn code_of(file: &Path, text: &str) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    if stem == "tests" || stem.ends_with("_tests") {
        return None;
    }
    let code = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    // Comments may name modules without importing them.
    let code: Vec<&str> = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect();
    Some(code.join("\n"))
}

/// The top-level modules named by `crate::` paths in `code`, `crate::{a, b::c}` included.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut start_of_item = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start_of_item = true,
                    c if c.is_whitespace() => {}
                    _ if start_of_item && depth == 0 => {
                        start_of_item = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            found.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn module_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(module) = top_module(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        let Some(code) = code_of(&file, &text) else {
            continue;
        };
        for imported in imported_modules(&code) {
            if imported != module {
                edges.insert(imported);
            }
        }
    }
    graph
}

/// A cycle of `graph` as the modules along it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn crate_paths_are_read_in_both_forms() {
    let code = "use crate::config::{self, Config};\nuse crate::{json, upstream::{self, Reason}};\n\
                let x = crate::timestamp::unix_seconds(t);";
    let found: Vec<String> = imported_modules(code).into_iter().collect();
    assert_eq!(found, ["config", "json", "timestamp", "upstream"]);
}

#[test]
fn a_cycle_is_found() {
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".to_owned()].into());
    graph.insert("b".into(), ["c".to_owned()].into());
    graph.insert("c".into(), ["a".to_owned()].into());
    assert_eq!(
        find_cycle(&graph),
        Some(
            vec!["a", "b", "c", "a"]
                .into_iter()
                .map(String::from)
                .collect()
        )
    );
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    // The graph holds the modules it should: a sanity check of the reading above.
    for (module, imports) in [
        ("config", "providers"),
        ("providers", "upstream"),
        ("providers", "meta"),
        ("poller", "providers"),
    ] {
        assert!(
            graph.get(module).is_some_and(|i| i.contains(imports)),
            "{module} -> {imports} not found in {graph:#?}"
        );
    }
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
}

#[test]
fn the_core_does_not_need_the_simulator() {
    // Only the providers' demo targets and the `demo` and `simulate` subcommands use it,
    // each behind the `simulator` feature.
    let importers: Vec<String> = module_graph()
        .into_iter()
        .filter(|(module, imports)| module != "simulator" && imports.contains("simulator"))
        .map(|(module, _)| module)
        .collect();
    assert_eq!(importers, ["cli", "providers"]);
}
