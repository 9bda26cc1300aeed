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
# python         a Python program that dlopens the installed .so with ctypes
# no_fortran     a build without the Fortran module (as without gfortran) installs and says so
#
# Exit 77 = skipped (ctest SKIP_RETURN_CODE), with the reason printed.
set -euo pipefail
build=$1 work=$2 step=$3
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
prefix=$work/prefix
jobs=$(nproc 2>/dev/null || echo 2)

skip() { echo "SKIPPED: $*"; exit 77; }

# configure_build_run <name> <source> <expected output> [cmake args...]: builds a consumer project
# from scratch against the prefix and runs the executable of the same name.
configure_build_run() {
  local name=$1 src=$2 expect=$3; shift 3
  local dir=$work/$name
  rm -rf "$dir"
  cmake -S "$src" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" "$@"
  cmake --build "$dir" -j "$jobs"
  local exe
  exe=$(find "$dir" -maxdepth 1 -type f -perm -u+x -name "${name%%_*}*" | head -n 1)
  run_expect "$expect" "$exe"
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
  ldd "$work/consumer_shared/consumer" | grep -q "$prefix/lib/libsharedmem.so" \
    || { echo "FAIL: the consumer does not load the installed library"; ldd "$work/consumer_shared/consumer"; exit 1; }
  ;;
c_static)
  configure_build_run consumer_static "$here/c" "C OK" -DSM_LINK=static
  if ldd "$work/consumer_static/consumer" | grep -q libsharedmem; then
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
python)
  py=${SM_PYTHON3:-}
  [ -n "$py" ] && [ -x "$py" ] || skip "python3 is not installed"
  run_expect "PYTHON OK" "$py" "$here/python/ctypes_test.py" "$prefix/lib/libsharedmem.so"
  run_expect "sum = 332833500" "$py" "$here/python/readme_example.py" "$prefix/lib/libsharedmem.so"
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
*)
  echo "unknown step $step"; exit 2
  ;;
esac
