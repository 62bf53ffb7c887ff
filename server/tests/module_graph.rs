//! The modules of `server/` and `raft/` import each other one way: no file module reaches, through
//! `crate::` paths, a module that reaches it back. A cycle here is two rooms grown into each other
//! (the API services and the member did, once: `auth` <-> `kv` <-> `member` <-> `maintenance`).
//!
//! Written here rather than run as `cargo modules dependencies --acyclic`: that tool builds
//! rust-analyzer's crates on install, minutes added to every fresh CI run, to answer a question
//! that a scan of `crate::` paths answers for these flat crates (one file a module, no `super::`
//! across files). `finds_a_planted_cycle` shows the check fails on a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the modules its code names through `crate::`.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The `crate::<module>` paths in Rust source, comments left out.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            // `use crate::{a, b::c}` names several.
            let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').collect()
            } else {
                vec![after]
            };
            for name in names {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_lowercase()) {
                    found.insert(name);
                }
            }
            rest = after;
        }
    }
    found
}

/// Each `<crate>/src/<module>.rs` file's module and what it names.
fn graph_of(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file");
        let mut names = crate_paths(&source);
        names.remove(&module);
        graph.insert(module, names);
    }
    // Only edges between the crate's own file modules (not re-exports such as `crate::convert`).
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for names in graph.values_mut() {
        names.retain(|name| modules.contains(name));
    }
    graph
}

/// A cycle of modules, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn server_and_raft_modules_import_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["server", "raft"] {
        let graph = graph_of(&root.join(krate).join("src"));
        assert!(
            graph.len() > 5,
            "{krate}: only {} modules read",
            graph.len()
        );
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{krate}/src: modules import each other: {}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn finds_a_planted_cycle() {
    let sources = [
        ("auth", "use crate::access::Caller;\n"),
        ("access", "use crate::{error::ApiError, member::Member};\n"),
        // Planted: the member reaches back into a service.
        ("member", "let x = crate::auth::hash(); // not crate::kv\n"),
        ("error", "use ballast_store::StoreError;\n"),
        ("kv", "use crate::access::answer;\n"),
    ];
    let graph: Graph = sources
        .iter()
        .map(|(module, source)| (module.to_string(), crate_paths(source)))
        .collect();
    assert_eq!(graph["member"], BTreeSet::from(["auth".to_string()]));
    let cycle = find_cycle(&graph).expect("the planted cycle is found");
    assert!(cycle.contains(&"member".to_string()) && cycle.contains(&"auth".to_string()));
    let mut acyclic = graph.clone();
    acyclic.get_mut("member").unwrap().clear();
    assert_eq!(find_cycle(&acyclic), None);
}
