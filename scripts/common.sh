# Shared helpers for scripts/*.sh (sourced, not run).

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# ensure_tools CMD:PKG ... : installs, with apt-get, the Debian package PKG of
# every CMD that `command -v` cannot find.  Does nothing when all are present.
ensure_tools() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
  done
  install_missing "" "${missing[@]}"
}

# install_missing WHY PKG ...: installs the Debian packages PKG (none: nothing to do) with apt-get,
# saying WHY; fails when there is no apt-get.
install_missing() {
  local why=$1
  shift
  [ "$#" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing $* and no apt-get to install them; install them by hand${why:+ ($why)}" >&2
    return 1
  fi
  echo "==> installing $*${why:+ ($why)}"
  apt_install "$@"
}

# ensure_omp_blas: what tests/omp needs besides gcc: clang with LLVM's OpenMP runtime, and OpenBLAS's
# pthreads build (with its development files) and OpenMP build; installs the missing ones with apt.
ensure_omp_blas() {
  local ma missing=()
  ma=$(gcc -print-multiarch 2>/dev/null)
  [ -n "$ma" ] || ma="$(uname -m)-linux-gnu"
  if ! command -v clang >/dev/null 2>&1; then
    missing+=(clang libomp-dev)
  elif ! echo 'int main(void) { return 0; }' | clang -fopenmp -x c - -o /dev/null >/dev/null 2>&1; then
    missing+=(libomp-dev)
  fi
  [ -e "/usr/lib/$ma/openblas-pthread/libopenblas.so" ] || missing+=(libopenblas-dev libopenblas0-pthread)
  [ -e "/usr/lib/$ma/openblas-openmp/libopenblas.so.0" ] || missing+=(libopenblas0-openmp)
  install_missing "for the OpenMP and BLAS tests, tests/omp, which skip without them" "${missing[@]}"
}

# ensure_mpi: both MPI implementations sm_mpi_map is built and tested against (issue 13), Open MPI
# and MPICH, each with its compiler wrapper and launcher (Debian installs them side by side as
# mpicc.openmpi / mpirun.openmpi and mpicc.mpich / mpiexec.mpich); installs the missing ones.
ensure_mpi() {
  local missing=()
  command -v mpicc.openmpi >/dev/null 2>&1 || missing+=(libopenmpi-dev)
  command -v mpirun.openmpi >/dev/null 2>&1 || missing+=(openmpi-bin)
  command -v mpicc.mpich >/dev/null 2>&1 || missing+=(libmpich-dev)
  command -v mpiexec.mpich >/dev/null 2>&1 || missing+=(mpich)
  install_missing "Open MPI and MPICH, for sm_mpi_map" "${missing[@]}"
}

# ensure_mpi4py PY: mpi4py for PY, for the mpi4py peer of scripts/bench-mpi.sh: built from source
# against Open MPI with pip (no MPI-bundling wheel: the peer must use the same MPI as the C peer).
# When pip cannot (PEP 668, no pip), says so and returns nonzero; the peer's row is then empty.
ensure_mpi4py() {
  local py=$1
  "$py" -c 'import mpi4py' >/dev/null 2>&1 && return 0
  echo "==> mpi4py: installing it for $py (pip, built against Open MPI)" >&2
  if MPICC=mpicc.openmpi "$py" -m pip install --quiet --no-binary=mpi4py mpi4py >&2 \
     && "$py" -c 'import mpi4py' >/dev/null 2>&1; then
    return 0
  fi
  echo "==> mpi4py: pip could not install it for $py; the mpi4py row will be empty" >&2
  return 1
}

# apt_install PKG ...: installs Debian packages (as root, non-interactively), with fresh lists.
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Cargo is installed by rustup into ~/.cargo/bin, which a non-login shell may
# not have on PATH.
ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    local dir="${CARGO_HOME:-$HOME/.cargo}/bin"
    if [ -x "$dir/cargo" ]; then
      export PATH="$dir:$PATH"
    else
      echo "error: cargo not found: install a Rust toolchain (https://rustup.rs)" >&2
      return 1
    fi
  fi
}

# Configure build/ (CMake), starting afresh if build/ was configured for
# another source tree (e.g. the repository was moved or cloned elsewhere).
configure_build() {
  local cache=build/CMakeCache.txt
  if [ -f "$cache" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD" "$cache"; then
    echo "==> build/ belongs to another source tree; starting afresh"
    rm -rf build
  fi
  cmake -S . -B build "$@"
}

# ensure_numpy [PYTHON]: makes numpy importable for the tests that compare with it, and sets
# SM_NUMPY_PYTHON to the interpreter that has it (PYTHON, default python3, or a virtual
# environment's).  Tries, in order: numpy already there; pip; the distribution's python3-numpy
# (apt-get), when pip refuses (PEP 668: "externally-managed-environment", the default of Debian
# 12 and Ubuntu 24.04) or is missing; a virtual environment in target/numpy-venv with pip.  Never
# fails: when all of that fails, it says so and returns 0, and the numpy tests skip with their
# reason (SM_NUMPY_PYTHON is then PYTHON, or empty without any python).
ensure_numpy() {
  local py out venv=${SM_NUMPY_VENV:-$PWD/target/numpy-venv}
  SM_NUMPY_PYTHON=
  if ! py=$(command -v "${1:-python3}"); then
    echo "note: no ${1:-python3}: the tests that compare with numpy will be skipped" >&2
    return 0
  fi
  SM_NUMPY_PYTHON=$py
  "$py" -c 'import numpy' 2>/dev/null && return 0
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
    SM_NUMPY_PYTHON=$venv/bin/python
    echo "==> numpy: using the virtual environment $venv"
    return 0
  fi

  echo "==> numpy: installing it for $py (pip)"
  if out=$("$py" -m pip install --quiet numpy 2>&1) && "$py" -c 'import numpy' 2>/dev/null; then
    return 0
  fi
  printf '%s\n' "$out" | tail -n 4 >&2

  if command -v apt-get >/dev/null 2>&1 \
     && { grep -q 'externally-managed-environment' <<<"$out" \
          || ! "$py" -m pip --version >/dev/null 2>&1; }; then
    echo "==> numpy: pip cannot install it here; installing the distribution's python3-numpy (apt-get)"
    if apt_install python3-numpy && "$py" -c 'import numpy' 2>/dev/null; then
      return 0
    fi
  fi

  echo "==> numpy: trying a virtual environment in $venv"
  # (Debian's python3 makes a venv only with python3-venv installed; a failed one is removed.)
  if { [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || { rm -rf "$venv"; false; }; } \
     && "$venv/bin/python" -m pip install --quiet numpy \
     && "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
    SM_NUMPY_PYTHON=$venv/bin/python
    return 0
  fi

  echo "warning: numpy could not be installed (no network? no root?); the tests that compare" \
       "with numpy (c.argsort_numpy) will be skipped.  Install python3-numpy, or numpy with pip," \
       "to run them." >&2
  return 0
}

# ensure_mpsort PY LOG: MP-sort's mpsort for PY, for scripts/bench-mpisort.sh (its pyproject
# needs numpy, Cython and mpi4py to build, and its setup.py compiles with $MPICC); pip's output
# goes to LOG. Sets MPSORT_HOW, or MPSORT_WHY and returns 1 when it cannot.
ensure_mpsort() {
  local py=$1 log=$2
  if "$py" -c 'import mpsort' >/dev/null 2>&1; then
    MPSORT_HOW="already installed"
    return 0
  fi
  if ! "$py" -c 'import mpi4py' >/dev/null 2>&1; then
    MPSORT_WHY="mpsort needs mpi4py, which pip could not install for $py (see ensure_mpi4py in scripts/common.sh)"
    return 1
  fi
  echo "==> mpsort: installing it for $py (pip, built with mpicc.openmpi; log in $log)" >&2
  if { "$py" -m pip install numpy cython setuptools wheel \
       && MPICC=mpicc.openmpi CC=mpicc.openmpi \
          "$py" -m pip install --no-build-isolation --no-binary=mpsort mpsort; } >"$log" 2>&1 \
     && "$py" -c 'import mpsort' >/dev/null 2>&1; then
    MPSORT_HOW="installed by this run: \`MPICC=mpicc.openmpi CC=mpicc.openmpi $py -m pip install --no-build-isolation --no-binary=mpsort mpsort\` after \`pip install numpy cython setuptools wheel\`"
    return 0
  fi
  local first import_error
  first=$(grep -m 1 -iE 'error|not found|externally' "$log" | tr -d '`|' | cut -c1-200 || true)
  import_error=$("$py" -c 'import mpsort' 2>&1 | tail -n 1 | tr -d '`|' || true)
  MPSORT_WHY="pip could not install mpsort for $py${first:+: $first}${import_error:+; import mpsort: $import_error} (pip's log: $log)"
  return 1
}
