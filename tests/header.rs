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

/// The field names of the struct between `start` and the first line after it that starts with
/// `end`, in order: C declarations (`type name;`, `type (*name)(...);`, comments dropped) or Rust
/// ones (`pub name: type`).
fn struct_fields(text: &str, start: &str, end: &str, rust: bool) -> Vec<String> {
    let body = text
        .split(start)
        .nth(1)
        .unwrap_or_else(|| panic!("`{start}` not found"));
    let body = &body[..body
        .find(end)
        .unwrap_or_else(|| panic!("`{end}` not found after `{start}`"))];
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    if rust {
        return body
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("pub "))
            .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
            .collect();
    }
    // C: drop /* ... */ comments, then each `;`-terminated declaration names one field.
    let mut code = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("/*") {
        code.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        rest = &rest[rest.find("*/").expect("an unterminated comment") + 2..];
    }
    code.push_str(rest);
    code.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.find("(*") {
            Some(i) => ident(&d[i + 2..]),
            None => d
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .map(ident)
                .unwrap_or_default(),
        })
        .collect()
}

#[test]
fn transport_header_mirrors_the_rust_struct() {
    // libsharedmem_mpi (C) builds the struct that libsharedmem (Rust) reads: both must list the
    // same fields in the same order (the size check catches only a different size).
    let c = struct_fields(
        include_str!("../mpi/sharedmem_transport.h"),
        "typedef struct sm_transport {",
        "} sm_transport;",
        false,
    );
    let rust = struct_fields(
        include_str!("../src/ranks/transport.rs"),
        "pub struct sm_transport {",
        "\n}",
        true,
    );
    assert!(
        c.len() >= 10,
        "found only {c:?} in mpi/sharedmem_transport.h"
    );
    assert_eq!(
        c, rust,
        "mpi/sharedmem_transport.h and src/ranks/transport.rs list different fields"
    );
}

#[test]
fn mpi_header_declares_the_contract() {
    let header = include_str!("../include/sharedmem_mpi.h");
    let squeeze = |s: &str| -> String { s.split_whitespace().collect() };
    let header = squeeze(header);
    for decl in [
        "sm_status sm_mpi_map(sm_pool *pool, MPI_Comm comm, int root, size_t njobs, \
         sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx);",
        "sm_status sm_mpi_map_ex(sm_pool *pool, MPI_Comm comm, int root, size_t njobs, \
         sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx, \
         const sm_map_opts *opts);",
        "sm_status sm_mpi_map_f(sm_pool *pool, MPI_Fint comm, int root, size_t njobs, \
         sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx);",
        "sm_status sm_mpi_map_ex_f(sm_pool *pool, MPI_Fint comm, int root, size_t njobs, \
         sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx, \
         const sm_map_opts *opts);",
        "sm_status sm_mpi_argsort(sm_pool *pool, MPI_Comm comm, const void *keys, \
         size_t nlocal, sm_dtype dtype, int64_t *out);",
        "sm_status sm_mpi_permute(sm_pool *pool, MPI_Comm comm, const void *src, size_t nlocal, \
         size_t itemsize, const int64_t *index, size_t nout, void *dst);",
        "sm_status sm_mpi_argsort_f(sm_pool *pool, MPI_Fint comm, const void *keys, \
         size_t nlocal, sm_dtype dtype, int64_t *out);",
        "sm_status sm_mpi_permute_f(sm_pool *pool, MPI_Fint comm, const void *src, \
         size_t nlocal, size_t itemsize, const int64_t *index, size_t nout, void *dst);",
        "#include <mpi.h>",
        "#include \"sharedmem.h\"",
        "extern \"C\" {",
    ] {
        assert!(
            header.contains(&squeeze(decl)),
            "include/sharedmem_mpi.h lacks `{decl}`"
        );
    }
}
