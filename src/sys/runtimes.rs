//! The OpenMP runtimes and BLAS libraries loaded in this process, found without linking to any of
//! them (as threadpoolctl does): `dl_iterate_phdr` lists the loaded objects, those whose file name
//! says what they are are opened again with `RTLD_NOLOAD`, and `dlsym` gives their thread-count
//! entry points (kept only when `dladdr` says the symbol is that object's own, not a dependency's).
//!
//! The scan runs again only when the set of loaded objects changed (`dlpi_adds` / `dlpi_subs`), so
//! a map pays one `dl_iterate_phdr` step for it. Nothing here runs in a forked child: the child
//! gets the caller's findings as plain data (function pointers into libraries the fork copied).
//! Each distinct finding is kept for the life of the process (`&'static`, a few hundred bytes;
//! a new one only when an OpenMP runtime or BLAS library is loaded or unloaded): workers on other
//! CPUs read it every map, and memory that no one writes stays in their caches.

use crate::sys::forklock::ForkSafeMutex;
use std::ffi::{c_int, c_void, CStr, CString};

type GetInt = unsafe extern "C" fn() -> c_int;
type SetInt = unsafe extern "C" fn(c_int);
type GetWide = unsafe extern "C" fn() -> i64;
type SetWide = unsafe extern "C" fn(i64);
type Pause = unsafe extern "C" fn(c_int) -> c_int;

/// `omp_pause_hard` of OpenMP 5.0's `omp_pause_resource_t`.
const OMP_PAUSE_HARD: c_int = 2;

/// Runtimes of each kind handled (more are left alone).
pub(crate) const MAX_PER_KIND: usize = 4;

/// A loaded object's file name (its last path component, cut to fit), for messages.
#[derive(Clone, Copy)]
pub struct Name {
    bytes: [u8; 47],
    len: u8,
}

impl Name {
    fn new(text: &str) -> Name {
        let mut name = Name {
            bytes: [0; 47],
            len: 0,
        };
        let mut end = text.len().min(name.bytes.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        name.bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        name.len = end as u8;
        name
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
    }
}

/// Which OpenMP runtime: GNU libgomp does not survive a fork in a usable state, LLVM's libomp
/// (and Intel's libiomp5, the same code) restarts itself in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmpKind {
    Gnu,
    Llvm,
}

/// One loaded OpenMP runtime.
#[derive(Clone, Copy)]
pub struct OpenMp {
    pub kind: OmpKind,
    pub name: Name,
    /// omp_get_max_threads / omp_set_num_threads: the calling thread's team size for its next
    /// region without a num_threads clause.
    pub count: Count,
    get_level: GetInt,
    get_active_level: GetInt,
    set_max_active_levels: SetInt,
    pause_resource_all: Option<Pause>,
}

impl OpenMp {
    /// Nesting level of the calling thread (0: not inside any parallel region).
    pub fn level(&self) -> i32 {
        // SAFETY: the runtime's omp_get_level.
        unsafe { (self.get_level)() }
    }

    /// libgomp only: frees the calling thread's pool of threads (OpenMP 5.0's
    /// `omp_pause_resource_all(omp_pause_hard)`), so that a child forked next starts a new one.
    /// False when the runtime refused (the thread is inside a region) or has no such call.
    pub fn pause(&self) -> bool {
        match self.pause_resource_all {
            // SAFETY: the runtime's omp_pause_resource_all with a valid pause kind.
            Some(pause) => unsafe { pause(OMP_PAUSE_HARD) == 0 },
            None => false,
        }
    }

    /// Makes every region the calling thread starts from now on run on one thread, whatever its
    /// num_threads clause: no more active levels than it is already in.
    pub fn serialize_new_regions(&self) {
        // SAFETY: the runtime's omp_get_active_level and omp_set_max_active_levels.
        unsafe { (self.set_max_active_levels)((self.get_active_level)()) }
    }
}

/// A runtime's thread count: how it is read and set.
#[derive(Clone, Copy)]
pub enum Count {
    Int(GetInt, SetInt),
    /// BLIS takes and returns `dim_t` (64 bits).
    Wide(GetWide, SetWide),
}

impl Count {
    fn addresses(&self) -> (usize, usize) {
        match *self {
            Count::Int(get, set) => (get as usize, set as usize),
            Count::Wide(get, set) => (get as usize, set as usize),
        }
    }

    pub fn get(&self) -> i32 {
        // SAFETY: the library's own getter, resolved from its loaded object, with its C signature.
        unsafe {
            match *self {
                Count::Int(get, _) => get(),
                Count::Wide(get, _) => get().clamp(1, i32::MAX as i64) as i32,
            }
        }
    }

    pub fn set(&self, n: i32) {
        let n = n.max(1);
        // SAFETY: the library's own setter with its C signature; n >= 1.
        unsafe {
            match *self {
                Count::Int(_, set) => set(n),
                Count::Wide(_, set) => set(n as i64),
            }
        }
    }
}

/// One loaded BLAS library whose thread count can be set (a process-wide setting in all of them).
#[derive(Clone, Copy)]
pub struct Blas {
    pub family: &'static str,
    pub name: Name,
    pub count: Count,
}

/// What is loaded now (the first MAX_PER_KIND of each kind).
#[derive(Clone, Copy, Default)]
pub struct Runtimes {
    openmp: [Option<OpenMp>; MAX_PER_KIND],
    blas: [Option<Blas>; MAX_PER_KIND],
}

impl Runtimes {
    pub fn is_empty(&self) -> bool {
        self.openmp[0].is_none() && self.blas[0].is_none()
    }

    /// The OpenMP runtimes, in load order.
    pub fn openmp(&self) -> impl Iterator<Item = &OpenMp> {
        self.openmp.iter().map_while(Option::as_ref)
    }

    /// The BLAS libraries, in load order.
    pub fn blas(&self) -> impl Iterator<Item = &Blas> {
        self.blas.iter().map_while(Option::as_ref)
    }

    /// The same runtimes (entry points) as `other`.
    fn same(&self, other: &Runtimes) -> bool {
        self.openmp()
            .map(|o| o.count.addresses())
            .eq(other.openmp().map(|o| o.count.addresses()))
            && self
                .blas()
                .map(|b| b.count.addresses())
                .eq(other.blas().map(|b| b.count.addresses()))
    }
}

/// Puts `item` in the first free slot, if any.
fn push<T>(slots: &mut [Option<T>], item: T) {
    if let Some(slot) = slots.iter_mut().find(|s| s.is_none()) {
        *slot = Some(item);
    }
}

/// BLAS families: file name prefixes, then (getter, setter) symbol names to try, in order.
/// OpenBLAS builds may suffix their symbols (64-bit integer builds: `64_`, `_64`), and SciPy's
/// wheels prefix them (`scipy_`).
struct Family {
    name: &'static str,
    prefixes: &'static [&'static str],
    wide: bool,
    symbols: &'static [(&'static CStr, &'static CStr)],
}

const FAMILIES: &[Family] = &[
    Family {
        name: "OpenBLAS",
        prefixes: &["libopenblas", "libblas", "libscipy_openblas"],
        wide: false,
        symbols: &[
            (c"openblas_get_num_threads", c"openblas_set_num_threads"),
            (
                c"openblas_get_num_threads64_",
                c"openblas_set_num_threads64_",
            ),
            (
                c"openblas_get_num_threads_64",
                c"openblas_set_num_threads_64",
            ),
            (
                c"scipy_openblas_get_num_threads",
                c"scipy_openblas_set_num_threads",
            ),
            (
                c"scipy_openblas_get_num_threads64_",
                c"scipy_openblas_set_num_threads64_",
            ),
        ],
    },
    Family {
        name: "BLIS",
        prefixes: &["libblis"],
        wide: true,
        symbols: &[(c"bli_thread_get_num_threads", c"bli_thread_set_num_threads")],
    },
    Family {
        name: "FlexiBLAS",
        prefixes: &["libflexiblas"],
        wide: false,
        symbols: &[(c"flexiblas_get_num_threads", c"flexiblas_set_num_threads")],
    },
    Family {
        name: "MKL",
        prefixes: &["libmkl_rt"],
        wide: false,
        symbols: &[(c"MKL_Get_Max_Threads", c"MKL_Set_Num_Threads")],
    },
];

/// What is loaded now: the last scan, or a new one if objects were loaded or unloaded since.
pub fn loaded() -> &'static Runtimes {
    /// The loader's (adds, subs) at the last scan, and what it found.
    type Scanned = Option<((u64, u64), &'static Runtimes)>;
    static CACHE: ForkSafeMutex<Scanned> = ForkSafeMutex::new(None);
    // The loader's lock is taken by dl_iterate_phdr (and dlopen, dlsym, dladdr): holding the
    // cache's ForkSafeMutex meanwhile keeps every fork() waiting until it is released, so that
    // no child is born with the loader locked by this thread (forklock.rs).
    let mut cache = CACHE.lock();
    let generation = load_generation();
    match *cache {
        Some((seen, found)) if seen == generation => found,
        previous => {
            let found = scan();
            let kept = match previous {
                Some((_, old)) if old.same(&found) => old,
                _ => &*Box::leak(Box::new(found)),
            };
            *cache = Some((generation, kept));
            kept
        }
    }
}

/// The loader's counts of objects loaded and unloaded so far.
fn load_generation() -> (u64, u64) {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info; data is the &mut (u64, u64) given below.
        unsafe {
            let out = &mut *data.cast::<(u64, u64)>();
            *out = ((*info).dlpi_adds, (*info).dlpi_subs);
        }
        1 // one object is enough: the counts are the same in all
    }
    let mut counts = (0u64, 0u64);
    // SAFETY: the callback only writes the counts into `counts`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut counts as *mut (u64, u64)).cast()) };
    counts
}

/// The address ranges of the executable code of every loaded object (its PT_LOAD segments with
/// PF_X), for telling whether a function pointer lies in code loaded at some earlier moment.
pub fn code_ranges() -> Vec<(usize, usize)> {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info whose dlpi_phdr holds dlpi_phnum headers;
        // data is the &mut Vec given below.
        unsafe {
            let out = &mut *data.cast::<Vec<(usize, usize)>>();
            let info = &*info;
            for i in 0..info.dlpi_phnum as usize {
                let ph = &*info.dlpi_phdr.add(i);
                if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
                    let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
                    out.push((start, start + ph.p_memsz as usize));
                }
            }
        }
        0
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    // SAFETY: the callback only pushes ranges into `ranges`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut ranges as *mut Vec<(usize, usize)>).cast()) };
    ranges
}

/// The paths of every loaded object (the executable, with an empty name, left out).
fn loaded_paths() -> Vec<CString> {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info whose name is NULL or NUL-terminated; data
        // is the &mut Vec given below.
        unsafe {
            let out = &mut *data.cast::<Vec<CString>>();
            let name = (*info).dlpi_name;
            if !name.is_null() && *name != 0 {
                out.push(CStr::from_ptr(name).to_owned());
            }
        }
        0
    }
    let mut paths: Vec<CString> = Vec::new();
    // SAFETY: the callback only pushes copies of the names into `paths`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut paths as *mut Vec<CString>).cast()) };
    paths
}

fn scan() -> Runtimes {
    let mut found = Runtimes::default();
    for path in loaded_paths() {
        let text = path.to_string_lossy().into_owned();
        let base = text.rsplit('/').next().unwrap_or(&text).to_owned();
        let omp = if base.starts_with("libgomp") {
            Some(OmpKind::Gnu)
        } else if base.starts_with("libomp") || base.starts_with("libiomp") {
            Some(OmpKind::Llvm)
        } else {
            None
        };
        let family = FAMILIES
            .iter()
            .find(|f| f.prefixes.iter().any(|p| base.starts_with(p)));
        if omp.is_none() && family.is_none() {
            continue;
        }
        let Some(object) = Object::open(&path) else {
            continue;
        };
        let name = Name::new(&base);
        if let Some(kind) = omp {
            if let Some(rt) = object.openmp(kind, name) {
                push(&mut found.openmp, rt);
            }
        }
        if let Some(family) = family {
            if let Some(blas) = object.blas(family, name) {
                push(&mut found.blas, blas);
            }
        }
    }
    found
}

/// A loaded object, opened again (its reference count raised until drop).
struct Object {
    handle: *mut c_void,
    path: CString,
}

impl Object {
    fn open(path: &CStr) -> Option<Object> {
        // SAFETY: RTLD_NOLOAD only looks the object up among those already loaded (no constructor
        // runs); the path is NUL-terminated.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
        (!handle.is_null()).then(|| Object {
            handle,
            path: path.to_owned(),
        })
    }

    /// The object's own definition of `name` (not one found in its dependencies).
    fn own(&self, name: &CStr) -> Option<*mut c_void> {
        // SAFETY: a valid handle and a NUL-terminated name; dladdr fills a plain struct.
        unsafe {
            let symbol = libc::dlsym(self.handle, name.as_ptr());
            if symbol.is_null() {
                return None;
            }
            let mut info: libc::Dl_info = std::mem::zeroed();
            if libc::dladdr(symbol, &mut info) == 0 || info.dli_fname.is_null() {
                return None;
            }
            (same_file(CStr::from_ptr(info.dli_fname), &self.path)).then_some(symbol)
        }
    }

    fn openmp(&self, kind: OmpKind, name: Name) -> Option<OpenMp> {
        // SAFETY: each symbol is the runtime's OpenMP API function of that name, whose C
        // signature is the one transmuted to (OpenMP specification).
        unsafe {
            Some(OpenMp {
                kind,
                name,
                count: Count::Int(
                    std::mem::transmute::<*mut c_void, GetInt>(self.own(c"omp_get_max_threads")?),
                    std::mem::transmute::<*mut c_void, SetInt>(self.own(c"omp_set_num_threads")?),
                ),
                get_level: std::mem::transmute::<*mut c_void, GetInt>(self.own(c"omp_get_level")?),
                get_active_level: std::mem::transmute::<*mut c_void, GetInt>(
                    self.own(c"omp_get_active_level")?,
                ),
                set_max_active_levels: std::mem::transmute::<*mut c_void, SetInt>(
                    self.own(c"omp_set_max_active_levels")?,
                ),
                pause_resource_all: self
                    .own(c"omp_pause_resource_all")
                    .map(|p| std::mem::transmute::<*mut c_void, Pause>(p)),
            })
        }
    }

    fn blas(&self, family: &Family, name: Name) -> Option<Blas> {
        let (get, set) = family
            .symbols
            .iter()
            .find_map(|(get, set)| Some((self.own(get)?, self.own(set)?)))?;
        // SAFETY: the family's documented getter and setter, with the C signatures transmuted to
        // (int or, for BLIS, dim_t = int64_t).
        let count = unsafe {
            if family.wide {
                Count::Wide(
                    std::mem::transmute::<*mut c_void, GetWide>(get),
                    std::mem::transmute::<*mut c_void, SetWide>(set),
                )
            } else {
                Count::Int(
                    std::mem::transmute::<*mut c_void, GetInt>(get),
                    std::mem::transmute::<*mut c_void, SetInt>(set),
                )
            }
        };
        Some(Blas {
            family: family.name,
            name,
            count,
        })
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed once.
        unsafe { libc::dlclose(self.handle) };
    }
}

/// Whether two names the loader gave are the same file (the same string, or the same inode when
/// one of them went through a symbolic link).
fn same_file(a: &CStr, b: &CStr) -> bool {
    if a == b {
        return true;
    }
    let stat = |p: &CStr| {
        // SAFETY: stat fills a plain struct from a NUL-terminated path.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::stat(p.as_ptr(), &mut st) == 0).then_some((st.st_dev, st.st_ino))
        }
    };
    matches!((stat(a), stat(b)), (Some(x), Some(y)) if x == y)
}
