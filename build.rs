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

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
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
