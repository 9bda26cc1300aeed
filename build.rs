//! Generates the C header from the Rust sources with cbindgen.
//!
//! The header is always written to OUT_DIR; the committed copy in include/ is only rewritten when
//! SHAREDMEM_BLESS_HEADER=1, so that tests/header.rs can tell when the committed header is stale.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=SHAREDMEM_BLESS_HEADER");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let version = |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).unwrap();
    let (major, minor, patch) = (version("MAJOR"), version("MINOR"), version("PATCH"));
    config.after_includes = Some(format!(
        "\n// The version of sharedmem this header belongs to (from Cargo.toml).\n\
         #define SM_VERSION_MAJOR {major}\n\
         #define SM_VERSION_MINOR {minor}\n\
         #define SM_VERSION_PATCH {patch}\n\
         #define SM_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         // Encodes a version as one comparable integer: SM_VERSION >= SM_MAKE_VERSION(0, 2, 0).\n\
         #define SM_MAKE_VERSION(major, minor, patch) ((major) * 1000000 + (minor) * 1000 + (patch))\n\
         #define SM_VERSION SM_MAKE_VERSION(SM_VERSION_MAJOR, SM_VERSION_MINOR, SM_VERSION_PATCH)\n"
    ));

    // The shared library's SONAME carries the major version, so that programs linked against
    // libsharedmem.so.0 keep loading a compatible library and refuse an incompatible one.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsharedmem.so.{major}");
    // Programs linked against target/release/libsharedmem.so record that SONAME, so the name must
    // exist beside the library for them to run from the build tree. OUT_DIR is
    // target/<profile>/build/<pkg>/out; the link is relative, and valid once cargo has linked.
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        let link = profile_dir.join(format!("libsharedmem.so.{major}"));
        if std::fs::read_link(&link).is_err() {
            let _ = std::os::unix::fs::symlink("libsharedmem.so", &link);
        }
    }
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can generate the header");
    bindings.write_to_file(out_dir.join("sharedmem.h"));
    if std::env::var("SHAREDMEM_BLESS_HEADER").as_deref() == Ok("1") {
        bindings.write_to_file(crate_dir.join("include/sharedmem.h"));
    }
}
