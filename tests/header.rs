//! The committed include/sharedmem.h must be what cbindgen generates from the current sources.

#[test]
fn committed_header_is_fresh() {
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/sharedmem.h"))
        .expect("build.rs wrote the generated header");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/sharedmem.h"))
            .expect("include/sharedmem.h exists");
    assert!(
        generated == committed,
        "include/sharedmem.h is stale: regenerate it with `SHAREDMEM_BLESS_HEADER=1 cargo build` \
         and commit it"
    );
}

#[test]
fn header_declares_the_contract() {
    let header = include_str!("../include/sharedmem.h");
    for decl in [
        "typedef struct sm_pool sm_pool;",
        "sm_pool *sm_pool_new(int nworkers, sm_backend backend);",
        "void sm_pool_free(sm_pool *pool);",
        "int sm_pool_nworkers(const sm_pool *pool);",
        "sm_status sm_critical_enter(sm_pool *pool);",
        "sm_status sm_critical_leave(sm_pool *pool);",
        "sm_status sm_ordered_enter(sm_pool *pool);",
        "sm_status sm_ordered_leave(sm_pool *pool);",
        "int sm_worker_id(void);",
        "void *sm_empty(size_t count, size_t itemsize);",
        "void sm_free(void *ptr);",
        "const char *sm_last_error(void);",
        "const char *sm_status_str(sm_status status);",
        "void sm_set_debug(int on);",
        "typedef int (*sm_work_fn)(void *ctx, size_t job, void *result);",
        "typedef int (*sm_reduce_fn)(void *ctx, size_t job, void *result);",
        "#define SM_STOP ",
        "SM_OK = 0,",
    ] {
        assert!(header.contains(decl), "header lacks `{decl}`");
    }
    let map = header
        .split("sm_status sm_map(")
        .nth(1)
        .expect("sm_map declared");
    let params: String = map.split(')').next().unwrap().split_whitespace().collect();
    assert_eq!(
        params,
        "sm_pool*pool,size_tnjobs,sm_work_fnwork,sm_reduce_fnreduce,size_tresult_size,void*ctx"
    );
}

#[test]
fn header_names_are_prefixed() {
    // Every name the header defines (macros, enum and function-pointer types) must carry the
    // library's prefix: an internal constant leaking into it (cbindgen exports every `pub const`)
    // would clash with the including program's names.
    let header = include_str!("../include/sharedmem.h");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for line in header.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#define ") {
            names.push(ident(rest));
        } else if let Some(rest) = line.strip_prefix("} ").filter(|r| r.ends_with(';')) {
            names.push(ident(rest));
        } else if let Some(rest) = line.strip_prefix("typedef ") {
            if let Some(i) = rest.find("(*") {
                names.push(ident(&rest[i + 2..]));
            } else if let Some(rest) = rest.strip_prefix("struct ") {
                names.push(ident(rest));
            }
        }
    }
    names.retain(|n| !n.is_empty()); // `typedef struct {`: the name comes on the `} name;` line
    assert!(names.len() > 20, "found only {names:?}");
    for name in names {
        assert!(
            name.starts_with("sm_") || name.starts_with("SM_") || name == "SHAREDMEM_H",
            "include/sharedmem.h defines `{name}`, which lacks the sm_/SM_ prefix"
        );
    }
}
