#!/usr/bin/env bash
# One step of the package tests (tests/package/CMakeLists.txt registers each as a ctest test):
#
#   run.sh <build dir> <work dir> <step>
#
# install        cmake --install <build dir> into a fresh <work>/prefix
# layout         the installed files, the SONAME and the version macros against Cargo.toml
# c_shared       a C consumer through find_package(sharedmem), shared library
# c_static       the same consumer, static library
# c_pkgconfig    the same C program built with pkg-config and plain cc
# cxx            a C++17 consumer of sharedmem.hpp through find_package
# fortran        a Fortran consumer of the `sharedmem` module through find_package
# fortran_moved  the Fortran consumer against its own prefix, installed and then moved elsewhere
# c_pkgconfig_moved  the pkg-config build against its own prefix, installed and then moved elsewhere
# python         a Python program that dlopens the installed .so with ctypes; the README's example
#                finds it through SHAREDMEM_LIB, SHAREDMEM_PREFIX or the loader's path
# no_fortran     a build without the Fortran module (as without gfortran) installs and says so
# fortran_only   a Fortran-only project (project(x Fortran)): the module, and the static library
# cxx_only       a C++-only project (project(x CXX)): shared and static library
# multiarch      builds with CMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu (Debian's multiarch layout)
#                and lib64: pkg-config and find_package consumers
# usr_destdir    a build for the prefix /usr (GNUInstallDirs picks the libdir: lib/<multiarch> on
#                Debian), staged with DESTDIR=<work>/stage: pkg-config and find_package consumers
# embed          sharedmem embedded with add_subdirectory (not the top-level project) builds the
#                library alone, no test, example or benchmark; top-level, it registers them
# mpi_cmake      the MPI component (SM_MPI=1): its files are installed, and a C consumer through
#                find_package(sharedmem COMPONENTS mpi), shared and static, runs under the launcher
#                (SM_MPIEXEC, SM_MPIEXEC_PREFLAGS); without the component (SM_MPI=0) that
#                find_package fails, saying the component was not built
# mpi_pkgconfig  the same consumer built with the MPI's compiler wrapper and pkg-config sharedmem-mpi
#
# Exit 77 = skipped (ctest SKIP_RETURN_CODE), with the reason printed.
set -euo pipefail
build=$1 work=$2 step=$3
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
prefix=$work/prefix
jobs=$(nproc 2>/dev/null || echo 2)

skip() { echo "SKIPPED: $*"; exit 77; }

# configure_build <name> <source> [cmake args...]: builds a consumer project from scratch against
# the prefix, in <work>/<name>.
configure_build() {
  local name=$1 src=$2; shift 2
  local dir=$work/$name
  rm -rf "$dir"
  cmake -S "$src" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" "$@"
  cmake --build "$dir" -j "$jobs"
}

# configure_build_run <name> <source> <expected output> [cmake args...]: configure_build, then runs
# the executable of the same name.
configure_build_run() {
  local name=$1 src=$2 expect=$3; shift 3
  configure_build "$name" "$src" "$@"
  local exe
  exe=$(find "$work/$name" -maxdepth 1 -type f -perm -u+x -name "${name%%_*}*" | head -n 1)
  run_expect "$expect" "$exe"
}

cargo_version() { sed -n 's/^version = "\([0-9.]*\)"/\1/p' "$source_dir/Cargo.toml" | head -n 1; }

# build_library <dir> [cmake args...]: configures and builds sharedmem itself (the library alone)
# in <dir>, from scratch.
build_library() {
  local dir=$1; shift
  rm -rf "$dir"
  cmake -S "$source_dir" -B "$dir" -DSM_BUILD_TESTS=OFF -DSM_BUILD_BENCH=OFF -DSM_BUILD_EXAMPLES=OFF "$@"
  cmake --build "$dir" -j "$jobs"
}

# check_pkgconfig <prefix> <libdir>: pkg-config, through <prefix>/<libdir>/pkgconfig, names
# directories that exist and hold the header and the library, and a C program built with its flags
# (and no other) runs.
check_pkgconfig() {
  local pfx=$1 libdir=$2 cflags libs
  command -v pkg-config >/dev/null || skip "pkg-config is not installed"
  export PKG_CONFIG_PATH=$pfx/$libdir/pkgconfig
  cflags=$(pkg-config --cflags sharedmem)
  libs=$(pkg-config --libs sharedmem)
  echo "pkg-config --cflags: $cflags"
  echo "pkg-config --libs:   $libs"
  local inc lib
  inc=$(sed -n 's/^-I\([^ ]*\).*/\1/p' <<<"$cflags")
  lib=$(sed -n 's/^-L\([^ ]*\) .*/\1/p' <<<"$libs")
  [ -f "$inc/sharedmem.h" ] || { echo "FAIL: --cflags names '$inc', which has no sharedmem.h"; exit 1; }
  [ -f "$lib/libsharedmem.so" ] || { echo "FAIL: --libs names '$lib', which has no libsharedmem.so"; exit 1; }
  [ "$(cd "$inc" && pwd -P)" = "$(cd "$pfx/include" && pwd -P)" ] \
    || { echo "FAIL: the include directory is not $pfx/include"; exit 1; }
  [ "$(cd "$lib" && pwd -P)" = "$(cd "$pfx/$libdir" && pwd -P)" ] \
    || { echo "FAIL: the library directory is not $pfx/$libdir"; exit 1; }
  [ "$(pkg-config --modversion sharedmem)" = "$(cargo_version)" ] || { echo "FAIL: pkg-config version"; exit 1; }
  local dir
  dir=$work/pkgconfig-$(basename "$pfx")
  rm -rf "$dir"; mkdir -p "$dir"
  # shellcheck disable=SC2086
  cc -std=c11 -Wall -Wextra -Werror $cflags "$here/c/consumer.c" -o "$dir/consumer" $libs \
     -Wl,-rpath,"$lib"
  run_expect "C OK" "$dir/consumer"
  loads "$dir/consumer" "$lib/libsharedmem.so" \
    || { echo "FAIL: the program does not load $lib/libsharedmem.so"; ldd "$dir/consumer"; exit 1; }
}

# check_find_package <prefix> <libdir> <tag>: C (shared and static) and, with the Fortran module,
# Fortran-only consumers find the package under <prefix>, build and run.
check_find_package() {
  local pfx=$1 libdir=$2 tag=$3 pkg_dir=()
  prefix=$pfx
  # CMake looks in <prefix>/lib64 only where the platform says so (not on Debian, which has
  # multiarch): there, name the package's directory, whose relative paths are what is tested.
  [ "$libdir" = lib64 ] && pkg_dir=(-Dsharedmem_DIR="$pfx/lib64/cmake/sharedmem")
  configure_build_run "consumer_$tag" "$here/c" "C OK" -DSM_LINK=shared "${pkg_dir[@]}"
  loads "$work/consumer_$tag/consumer" "$pfx/$libdir/libsharedmem.so" \
    || { echo "FAIL: the consumer does not load $pfx/$libdir/libsharedmem.so"; exit 1; }
  configure_build_run "consumer_${tag}_static" "$here/c" "C OK" -DSM_LINK=static "${pkg_dir[@]}"
  if [ "${SM_FORTRAN:-0}" = 1 ]; then
    configure_build "fortran_only_$tag" "$here/fortran_only" "${pkg_dir[@]}"
    run_expect "sum = 332833500, squares(1000) = 998001" "$work/fortran_only_$tag/fortran_only_module"
  fi
}

# loads <program> <text>: whether ldd lists a library of <program> containing <text>. (ldd's output
# is taken first: in `ldd | grep -q` under pipefail, grep quitting at its match can kill ldd with
# SIGPIPE and make the pipeline fail.)
loads() {
  local out
  out=$(ldd "$1") || { echo "ldd $1 failed"; exit 1; }
  grep -qF -- "$2" <<<"$out"
}

run_expect() {
  local expect=$1; shift
  local out
  out=$("$@")
  echo "$out"
  grep -qxF "$expect" <<<"$out" || { echo "FAIL: expected a line '$expect'"; exit 1; }
}

# install_into <prefix> [build dir]
install_into() {
  rm -rf "$1"
  cmake --install "${2:-$build}" --prefix "$1"
}

case $step in
install)
  install_into "$prefix"
  ;;
layout)
  for f in lib/libsharedmem.a include/sharedmem.h lib/cmake/sharedmem/sharedmemConfig.cmake \
           lib/cmake/sharedmem/sharedmemConfigVersion.cmake lib/pkgconfig/sharedmem.pc; do
    [ -f "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
  done
  version=$(sed -n 's/^version = "\([0-9.]*\)"/\1/p' "$source_dir/Cargo.toml" | head -n 1)
  major=${version%%.*}
  real=$prefix/lib/libsharedmem.so.$version
  [ -f "$real" ] && [ ! -L "$real" ] || { echo "FAIL: $real is not a file"; exit 1; }
  [ "$(readlink "$prefix/lib/libsharedmem.so.$major")" = "libsharedmem.so.$version" ] \
    || { echo "FAIL: libsharedmem.so.$major does not point to libsharedmem.so.$version"; exit 1; }
  [ "$(readlink "$prefix/lib/libsharedmem.so")" = "libsharedmem.so.$major" ] \
    || { echo "FAIL: libsharedmem.so does not point to libsharedmem.so.$major"; exit 1; }
  soname=$(readelf -d "$real" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  [ "$soname" = "libsharedmem.so.$major" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
  # The header's version macros, compiled, against Cargo.toml.
  cat > "$work/version.c" <<'C'
#include <sharedmem.h>
#include <stdio.h>
int main(void) {
  printf("%d.%d.%d %s %d\n", SM_VERSION_MAJOR, SM_VERSION_MINOR, SM_VERSION_PATCH,
         SM_VERSION_STRING, SM_VERSION >= SM_MAKE_VERSION(0, 0, 1));
  return 0;
}
C
  cc -std=c99 -Wall -Wextra -Werror -pedantic -I"$prefix/include" "$work/version.c" -o "$work/version"
  run_expect "$version $version 1" "$work/version"
  echo "layout OK: $version, SONAME $soname"
  ;;
c_shared)
  configure_build_run consumer_shared "$here/c" "C OK" -DSM_LINK=shared
  loads "$work/consumer_shared/consumer" "$prefix/lib/libsharedmem.so" \
    || { echo "FAIL: the consumer does not load the installed library"; ldd "$work/consumer_shared/consumer"; exit 1; }
  ;;
c_static)
  configure_build_run consumer_static "$here/c" "C OK" -DSM_LINK=static
  if loads "$work/consumer_static/consumer" libsharedmem; then
    echo "FAIL: the static consumer still needs libsharedmem.so"; exit 1
  fi
  ;;
c_pkgconfig)
  command -v pkg-config >/dev/null || skip "pkg-config is not installed"
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  dir=$work/pkgconfig; rm -rf "$dir"; mkdir -p "$dir"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags sharedmem) "$here/c/consumer.c" \
     -o "$dir/consumer" $(pkg-config --libs sharedmem) -Wl,-rpath,"$prefix/lib"
  run_expect "C OK" "$dir/consumer"
  [ "$(pkg-config --modversion sharedmem)" = "$(sed -n 's/^version = "\([0-9.]*\)"/\1/p' "$source_dir/Cargo.toml" | head -n 1)" ] \
    || { echo "FAIL: pkg-config version"; exit 1; }
  ;;
cxx)
  command -v c++ >/dev/null || skip "no C++ compiler"
  configure_build_run cxx_consumer "$here/cxx" "CXX OK"
  run_expect "sum = 332833500, squares[999] = 998001" "$work/cxx_consumer/readme_example"
  ;;
fortran)
  [ "${SM_FORTRAN:-0}" = 1 ] || skip "sharedmem was configured without a Fortran compiler (install gfortran)"
  configure_build_run fortran_consumer "$here/fortran" "FORTRAN OK"
  # Every backend, and the README's Fortran example.
  (cd "$work/fortran_consumer" && ctest --output-on-failure)
  # Output of jobs on forked workers, with stdout redirected to a file: each line exactly once.
  "$work/fortran_consumer/fortran_job_output" > "$work/fortran_job_output.txt"
  expected=$'before\njob 0\njob 1\njob 2\njob 3\nstatus 0'
  [ "$(sort "$work/fortran_job_output.txt")" = "$expected" ] \
    || { echo "FAIL: job output:"; cat "$work/fortran_job_output.txt"; exit 1; }
  ;;
fortran_moved)
  [ "${SM_FORTRAN:-0}" = 1 ] || skip "sharedmem was configured without a Fortran compiler (install gfortran)"
  prefix=$work/prefix-before-move
  install_into "$prefix"
  moved=$work/prefix-after-move
  rm -rf "$moved"
  mv "$prefix" "$moved"
  prefix=$moved
  configure_build_run fortran_moved "$here/fortran" "FORTRAN OK"
  ;;
c_pkgconfig_moved)
  prefix=$work/prefix-pc-before-move
  install_into "$prefix"
  moved=$work/prefix-pc-after-move
  rm -rf "$moved"
  mv "$prefix" "$moved"
  check_pkgconfig "$moved" lib
  ;;
python)
  py=${SM_PYTHON3:-}
  [ -n "$py" ] && [ -x "$py" ] || skip "python3 is not installed"
  run_expect "PYTHON OK" "$py" "$here/python/ctypes_test.py" "$prefix/lib/libsharedmem.so"
  # The README's example, as a user runs it: the library's path from the environment, or found on
  # the loader's path.
  example=$here/python/readme_example.py
  run_expect "sum = 332833500" env -u SHAREDMEM_PREFIX SHAREDMEM_LIB="$prefix/lib/libsharedmem.so.0" "$py" "$example"
  run_expect "sum = 332833500" env -u SHAREDMEM_LIB SHAREDMEM_PREFIX="$prefix" "$py" "$example"
  run_expect "sum = 332833500" env -u SHAREDMEM_LIB -u SHAREDMEM_PREFIX LD_LIBRARY_PATH="$prefix/lib" \
    "$py" "$example"
  # Nowhere to be found: a message saying what to set, not a traceback.
  cache=$(ldconfig -p 2>/dev/null || true)
  if ! grep -q libsharedmem <<<"$cache"; then
    if out=$(env -u SHAREDMEM_LIB -u SHAREDMEM_PREFIX -u LD_LIBRARY_PATH "$py" "$example" 2>&1); then
      echo "FAIL: the example ran without the library"; exit 1
    fi
    echo "$out"
    grep -q "SHAREDMEM_LIB" <<<"$out" && ! grep -q Traceback <<<"$out" \
      || { echo "FAIL: no clear message when the library is not found"; exit 1; }
  fi
  ;;
no_fortran)
  # The branch a machine without gfortran takes (SM_WITH_FORTRAN=OFF skips the compiler search).
  dir=$work/no-fortran-build
  rm -rf "$dir"
  cmake -S "$source_dir" -B "$dir" -DSM_WITH_FORTRAN=OFF -DSM_BUILD_TESTS=OFF -DSM_BUILD_BENCH=OFF \
    | tee "$work/no-fortran-configure.log"
  grep -q "the Fortran module is not built or installed" "$work/no-fortran-configure.log" \
    || { echo "FAIL: no message about the Fortran module"; exit 1; }
  cmake --build "$dir" -j "$jobs"
  prefix=$work/prefix-no-fortran
  install_into "$prefix" "$dir"
  [ ! -e "$prefix/include/fortran" ] && [ ! -e "$prefix/lib/libsharedmem_fortran.a" ] \
    || { echo "FAIL: Fortran files installed"; exit 1; }
  configure_build_run consumer_no_fortran "$here/c" "C OK"
  if cmake -S "$here/fortran" -B "$work/fortran-without-module" -DCMAKE_PREFIX_PATH="$prefix" \
      > "$work/fortran-without-module.log" 2>&1; then
    echo "FAIL: find_package(sharedmem COMPONENTS fortran) succeeded without the module"; exit 1
  fi
  grep -q "fortran" "$work/fortran-without-module.log" || { cat "$work/fortran-without-module.log"; exit 1; }
  ;;
fortran_only)
  [ "${SM_FORTRAN:-0}" = 1 ] || skip "sharedmem was configured without a Fortran compiler (install gfortran)"
  configure_build fortran_only "$here/fortran_only"
  run_expect "sum = 332833500, squares(1000) = 998001" "$work/fortran_only/fortran_only_module"
  run_expect "static workers = 3" "$work/fortran_only/fortran_only_static"
  if loads "$work/fortran_only/fortran_only_static" libsharedmem; then
    echo "FAIL: the static program still needs libsharedmem.so"; exit 1
  fi
  ;;
cxx_only)
  command -v c++ >/dev/null || skip "no C++ compiler"
  configure_build cxx_only "$here/cxx_only"
  for kind in shared static; do
    run_expect "sum = 332833500, squares[999] = 998001" "$work/cxx_only/cxx_only_$kind"
  done
  if loads "$work/cxx_only/cxx_only_static" libsharedmem; then
    echo "FAIL: the static program still needs libsharedmem.so"; exit 1
  fi
  ;;
multiarch)
  for libdir in lib/x86_64-linux-gnu lib64; do
    tag=$(tr / - <<<"$libdir")
    build_library "$work/build-$tag" -DCMAKE_INSTALL_LIBDIR=$libdir
    pfx=$work/prefix-$tag
    install_into "$pfx" "$work/build-$tag"
    [ -f "$pfx/$libdir/libsharedmem.so.$(cargo_version)" ] || { echo "FAIL: not installed in $libdir"; exit 1; }
    check_pkgconfig "$pfx" "$libdir"
    check_find_package "$pfx" "$libdir" "$tag"
  done
  ;;
usr_destdir)
  dir=$work/usr-build
  build_library "$dir" -DCMAKE_INSTALL_PREFIX=/usr
  libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$dir/CMakeCache.txt")
  echo "GNUInstallDirs chose CMAKE_INSTALL_LIBDIR=$libdir for the prefix /usr"
  stage=$work/stage
  rm -rf "$stage"
  DESTDIR=$stage cmake --install "$dir"
  [ -f "$stage/usr/$libdir/libsharedmem.so.$(cargo_version)" ] || { echo "FAIL: not staged in $stage/usr/$libdir"; exit 1; }
  [ -z "$(find "$stage" -mindepth 1 -maxdepth 1 ! -name usr)" ] || { echo "FAIL: files staged outside usr/"; exit 1; }
  check_pkgconfig "$stage/usr" "$libdir"
  check_find_package "$stage/usr" "$libdir" usr_destdir
  ;;
embed)
  dir=$work/embed
  rm -rf "$dir"
  cmake -S "$here/embed" -B "$dir" -DSM_SOURCE_DIR="$source_dir"
  tests=$(cd "$dir" && ctest -N | sed -n 's/^Total Tests: //p')
  [ "$tests" = 0 ] || { echo "FAIL: embedded, sharedmem registers $tests tests"; (cd "$dir" && ctest -N); exit 1; }
  cmake --build "$dir" -j "$jobs"
  built=$(cd "$dir" && find . -path ./sharedmem/fortran-modules -prune -o -name CMakeFiles -prune -o \
            -type f -perm -u+x -print | sort)
  echo "executables built: $built"
  [ "$built" = "./embed_consumer" ] || { echo "FAIL: more than the consumer was built"; exit 1; }
  run_expect "C OK" "$dir/embed_consumer"
  # Top-level (configured only), the same source tree registers its tests and examples.
  top=$work/toplevel
  rm -rf "$top"
  cmake -S "$source_dir" -B "$top" > "$work/toplevel-configure.log"
  (cd "$top" && ctest -N) > "$work/toplevel-tests.txt"
  for t in example_readme package.install; do
    grep -q ": $t\$" "$work/toplevel-tests.txt" || { echo "FAIL: top-level, $t is not registered"; exit 1; }
  done
  echo "top-level: $(sed -n 's/^Total Tests: //p' "$work/toplevel-tests.txt") tests registered"
  ;;
mpi_cmake)
  if [ "${SM_MPI:-0}" != 1 ]; then
    if cmake -S "$here/mpi" -B "$work/mpi-without-component" -DCMAKE_PREFIX_PATH="$prefix" \
        > "$work/mpi-without-component.log" 2>&1; then
      echo "FAIL: find_package(sharedmem COMPONENTS mpi) succeeded without the component"; exit 1
    fi
    grep -q "built without its MPI component" "$work/mpi-without-component.log" \
      || { cat "$work/mpi-without-component.log"; echo "FAIL: no clear message"; exit 1; }
    echo "without the MPI component: find_package(sharedmem COMPONENTS mpi) fails and says why"
    exit 0
  fi
  version=$(cargo_version)
  for f in include/sharedmem_mpi.h lib/libsharedmem_mpi.a "lib/libsharedmem_mpi.so.$version" \
           lib/pkgconfig/sharedmem-mpi.pc; do
    [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
  done
  [ -e "$prefix/include/sharedmem_transport.h" ] && { echo "FAIL: the private transport header is installed"; exit 1; }
  if [ "${SM_FORTRAN:-0}" = 1 ]; then
    for f in include/fortran/sharedmem_mpi.mod lib/libsharedmem_mpi_fortran.a; do
      [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
    done
  fi
  configure_build mpi_consumer "$here/mpi"
  # shellcheck disable=SC2086
  for kind in shared static; do
    run_expect "MPI OK" "$SM_MPIEXEC" -n 2 $SM_MPIEXEC_PREFLAGS "$work/mpi_consumer/mpi_consumer_$kind"
  done
  loads "$work/mpi_consumer/mpi_consumer_shared" "$prefix/lib/libsharedmem_mpi.so" \
    || { echo "FAIL: the consumer does not load the installed libsharedmem_mpi"; exit 1; }
  ;;
mpi_pkgconfig)
  [ "${SM_MPI:-0}" = 1 ] || skip "sharedmem was configured without its MPI component"
  command -v pkg-config >/dev/null || skip "pkg-config is not installed"
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  mpicc=$(pkg-config --variable=mpi_c_compiler sharedmem-mpi)
  [ "$mpicc" = "$SM_MPI_C_COMPILER" ] || { echo "FAIL: mpi_c_compiler is '$mpicc', not '$SM_MPI_C_COMPILER'"; exit 1; }
  dir=$work/mpi-pkgconfig; rm -rf "$dir"; mkdir -p "$dir"
  # shellcheck disable=SC2046
  "$mpicc" -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags sharedmem-mpi) "$here/mpi/consumer.c" \
     -o "$dir/mpi_consumer" $(pkg-config --libs sharedmem-mpi) -Wl,-rpath,"$prefix/lib"
  # shellcheck disable=SC2086
  run_expect "MPI OK" "$SM_MPIEXEC" -n 2 $SM_MPIEXEC_PREFLAGS "$dir/mpi_consumer"
  ;;
*)
  echo "unknown step $step"; exit 2
  ;;
esac
