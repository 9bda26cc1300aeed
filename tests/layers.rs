//! The library's layers import one way (issue 12): the C boundary (`src/ffi/`) over the engine over
//! the system wrappers (`src/sys/`). Read from the sources: a `crate::` path (also inside a function
//! body, and each name of a `use crate::{...}` group) names the module it depends on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The top-level modules a source file names through `crate::` paths, outside comments.
fn crate_deps(text: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for name in inner.split(',') {
                    let name = name.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        deps.insert(name.to_string());
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    deps.insert(name);
                }
            }
        }
    }
    deps
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn violations(files: &[PathBuf], allowed: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut bad = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for dep in crate_deps(&text) {
            if !allowed(&dep) {
                bad.push(format!("{} uses crate::{dep}", file.display()));
            }
        }
    }
    bad
}

#[test]
fn sys_imports_only_sys_and_status() {
    let files = rust_files(&src().join("sys"));
    assert!(files.len() >= 6, "src/sys has {} files", files.len());
    let bad = violations(&files, &|dep| dep == "sys" || dep == "status");
    assert!(
        bad.is_empty(),
        "src/sys must not import the engine or the C boundary:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_c_types_and_statuses_are_at_the_bottom() {
    let abi = violations(&[src().join("abi.rs")], &|_| false);
    assert!(
        abi.is_empty(),
        "src/abi.rs (the header's types, used by every layer) imports nothing of the crate:\n{}",
        abi.join("\n")
    );
    let status = violations(&[src().join("status.rs")], &|dep| dep == "abi");
    assert!(
        status.is_empty(),
        "src/status.rs imports only abi:\n{}",
        status.join("\n")
    );
}

#[test]
fn only_the_c_boundary_imports_it() {
    let files: Vec<PathBuf> = rust_files(&src())
        .into_iter()
        .filter(|f| !f.starts_with(src().join("ffi")))
        .collect();
    let bad = violations(&files, &|dep| dep != "ffi");
    assert!(
        bad.is_empty(),
        "only src/ffi may use crate::ffi:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let deps = crate_deps(
        "use crate::{process, serial::run};\n    let x = crate::ffi::types::SM_STOP; // crate::nope\n",
    );
    let want: BTreeSet<String> = ["ffi", "process", "serial"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(deps, want);
}

#[test]
fn the_layers_are_folders() {
    for path in [
        "abi.rs",
        "ffi/mod.rs",
        "engine/mod.rs",
        "engine/backend/process.rs",
        "engine/backend/threads.rs",
        "engine/backend/serial.rs",
        "sys/mod.rs",
    ] {
        assert!(src().join(path).is_file(), "src/{path} is missing");
    }
}
