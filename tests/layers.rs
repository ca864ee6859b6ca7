//! The architecture of `netns-core` (`ARCHITECTURE.md`), checked: its modules form layers that
//! import only downward, no module imports one that imports it back, directly or through
//! others, and only `sys` calls `libc`.
//!
//! A module's imports are the `crate::` and `super::` paths in its code (comments and doc
//! comments are not code), `use` trees expanded. A path to an item the crate root re-exports
//! (`crate::NetNs`) hides which module it comes from, so code names the defining module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each module's layer, by the first segment of its path: the base, the namespace itself, one
/// way in, what runs inside, and what is built on running inside.
const LAYERS: &[(&str, u8)] = &[
    ("error", 1),
    ("report", 1),
    ("fork", 1),
    ("once", 1),
    ("sync", 1),
    ("security", 1),
    ("sys", 1),
    ("thread", 1),
    ("namespace", 2),
    ("entry", 3),
    ("inside", 4),
    ("command", 5),
    ("loopback", 5),
    ("rootless", 5),
    ("lab", 5),
    ("__private", 5),
];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("netns-core/src")
}

/// Every module of the crate but the root, by path (`inside::warm`), with its file.
fn modules() -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![source_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path.strip_prefix(source_dir()).unwrap().with_extension("");
            let mut segments: Vec<String> = relative
                .iter()
                .map(|segment| segment.to_string_lossy().into_owned())
                .collect();
            if segments.last().map(String::as_str) == Some("mod") {
                segments.pop();
            }
            if segments != ["lib"] {
                found.insert(segments.join("::"), path);
            }
        }
    }
    found
}

/// The code of a file without its comments (line comments, doc comments) and string literals,
/// which may mention paths that are not imports.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut in_string = false;
        for c in line.chars() {
            match (in_string, c) {
                (_, '"') => in_string = !in_string,
                (false, c) => code.push(c),
                (true, _) => {}
            }
        }
        code.push('\n');
    }
    code
}

/// The paths of a `use` tree (`a::{b, c::{d, e}}`), expanded.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::self").to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len() - 1];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .flat_map(|part| match part {
            "self" => vec![prefix.trim_end_matches("::").to_owned()],
            part => expand_use(&format!("{prefix}{part}")),
        })
        .collect()
}

/// Every `crate::` or `super::` path in `code`, absolute (`super` resolved against `module`).
fn paths_in(code: &str, module: &str) -> Vec<String> {
    let mut paths = Vec::new();
    // `use` trees, which may span lines; the rest is searched for paths in expressions and
    // types.
    let mut other = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let tree_start = at + 4;
        let Some(end) = rest[tree_start..].find(';') else {
            break;
        };
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            paths.extend(expand_use(&rest[tree_start..tree_start + end]));
            other.push_str(&rest[..at]);
        } else {
            other.push_str(&rest[..tree_start + end]);
        }
        rest = &rest[tree_start + end..];
    }
    other.push_str(rest);
    for start in ["crate::", "super::"] {
        let mut rest = other.as_str();
        while let Some(at) = rest.find(start) {
            let path: String = rest[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(path.trim_end_matches(':').to_owned());
            rest = &rest[at + start.len()..];
        }
    }
    let parent: Vec<&str> = module.split("::").collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let mut segments: Vec<&str> = path.split("::").collect();
            match segments.first() {
                Some(&"crate") => {
                    segments.remove(0);
                }
                Some(&"super") => {
                    // A file's `super` is its parent module (a `mod.rs` is the module itself).
                    let mut base = parent.clone();
                    while segments.first() == Some(&"super") {
                        segments.remove(0);
                        base.pop();
                    }
                    segments.splice(0..0, base);
                }
                _ => return None,
            }
            Some(segments.join("::"))
        })
        .collect()
}

/// The module a path leads into: its longest prefix that is a module.
fn module_of(path: &str, modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|len| segments[..len].join("::"))
        .find(|prefix| modules.contains_key(prefix))
}

fn layer_of(module: &str) -> u8 {
    let top = module.split("::").next().unwrap();
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .unwrap_or_else(|| {
            panic!("module `{module}` is in no layer: add it to LAYERS and ARCHITECTURE.md")
        })
        .1
}

/// Each module's imports of other modules.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&fs::read_to_string(file).unwrap());
        let mut imports = BTreeSet::new();
        for path in paths_in(&code, module) {
            match module_of(&path, &modules) {
                Some(imported)
                    if imported != *module && !module.starts_with(&format!("{imported}::")) =>
                {
                    imports.insert(imported);
                }
                // A module's own items, or its parent's `mod.rs` re-exports seen from a child.
                Some(_) => {}
                None => assert!(
                    path.split("::").count() < 2 || path.is_empty(),
                    "{module} names `crate::{path}`, an item the crate root re-exports: name the \
                     module that defines it"
                ),
            }
        }
        graph.insert(module.clone(), imports);
    }
    graph
}

#[test]
fn every_module_imports_only_its_own_layer_or_the_ones_below() {
    let mut upward = Vec::new();
    for (module, imports) in import_graph() {
        for imported in imports {
            if layer_of(&imported) > layer_of(&module) {
                upward.push(format!(
                    "{module} (layer {}) imports {imported} (layer {})",
                    layer_of(&module),
                    layer_of(&imported)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = import_graph();
    // Depth-first search for a cycle, reporting the first one found.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for imported in graph.get(module).into_iter().flatten() {
            // A module's children are part of it: `entry` re-exporting `entry::views` is not a
            // cycle with `entry::views` importing `entry`'s items.
            if imported.starts_with(&format!("{module}::"))
                || module.starts_with(&format!("{imported}::"))
            {
                continue;
            }
            if let Some(cycle) = visit(imported, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("an import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// The check itself sees what it must: `use` trees with nested braces, `super`, and paths in
/// code, but not in comments or strings.
#[test]
fn the_import_reader_finds_use_trees_super_and_inline_paths_but_not_comments() {
    let code = code_of(
        "use super::{fresh, own::{self, Owner}};\n\
         // use crate::not_this;\n\
         let s = \"crate::nor_this\";\n\
         crate::sync::lock(&m);\n",
    );
    let mut paths = paths_in(&code, "inside::warm");
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths,
        [
            "inside::fresh",
            "inside::own",
            "inside::own::Owner",
            "sync::lock"
        ]
    );
}

/// The `libc` functions a line of code calls: each identifier after `libc::` that is followed
/// by `(` (so `libc::CLONE_NEWNET` and `libc::sigset_t` are not calls).
fn libc_calls_in(line: &str) -> Vec<String> {
    let mut calls = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("libc::") {
        rest = &rest[at + "libc::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].trim_start().starts_with('(') {
            calls.push(name);
        }
    }
    calls
}

/// What `find` finds in each line of code (comments and strings left out) of every file of the
/// crate but `except`, as `file:line: what`.
fn found_in_code(except: Option<&Path>, find: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut files = vec![source_dir().join("lib.rs")];
    files.extend(modules().into_values());
    let mut found = Vec::new();
    for file in files.iter().filter(|file| Some(file.as_path()) != except) {
        let code = code_of(&fs::read_to_string(file).unwrap());
        for (number, line) in code.lines().enumerate() {
            for what in find(line) {
                let file = file.strip_prefix(source_dir()).unwrap().display();
                found.push(format!("{file}:{}: {what}", number + 1));
            }
        }
    }
    found
}

/// Every raw `libc` call lives in `sys`, with its `SAFETY` argument (`ARCHITECTURE.md`, "one
/// home for each idea"): no other file of the crate calls a `libc` function.
#[test]
fn only_sys_calls_libc() {
    let sys = source_dir().join("sys.rs");
    assert!(sys.is_file(), "netns-core/src/sys.rs is missing");
    let calls = found_in_code(Some(&sys), |line| {
        let calls = libc_calls_in(line).into_iter();
        calls.map(|call| format!("libc::{call}")).collect()
    });
    assert!(
        calls.is_empty(),
        "libc calls outside sys.rs (give each a function in sys, with its SAFETY argument):\n{}",
        calls.join("\n")
    );
}

/// The check sees calls (also through `nix::libc`, and with a space before the parenthesis),
/// but not constants, types, struct literals or comments.
#[test]
fn the_libc_call_reader_finds_calls_but_not_constants_types_or_comments() {
    let code = code_of(
        "let r = unsafe { nix::libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) };\n\
         let t = libc::timespec { tv_sec: 0, tv_nsec: 0 };\n\
         let s: libc::sigset_t = x; f(libc::CLONE_NEWNET);\n\
         // libc::getpid()\n\
         let p = libc::gettid ();\n",
    );
    let calls: Vec<String> = code.lines().flat_map(libc_calls_in).collect();
    assert_eq!(calls, ["ioctl", "gettid"]);
}

/// Everything made on first use is made by `once::NoWaitOnce` (`ARCHITECTURE.md`): std's
/// `OnceLock`, `LazyLock` and `Once` make a racing thread wait for the maker, forever in a child
/// forked mid-make, where the maker was not copied.
#[test]
fn only_no_wait_once_makes_values_on_first_use() {
    let found = found_in_code(None, |line| {
        let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        let lazy = words.filter(|word| ["OnceLock", "LazyLock", "Once"].contains(word));
        lazy.map(str::to_owned).collect()
    });
    assert!(
        found.is_empty(),
        "lazy cells that wait (use once::NoWaitOnce):\n{}",
        found.join("\n")
    );
}
