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
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${missing[*]} and no apt-get to install them; install them by hand" >&2
    return 1
  fi
  echo "==> installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
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
