#!/usr/bin/env bash
# Installs what the two README commands need, skipping whatever is already
# present, so running it again costs a few seconds. Sourced by scripts/serve
# and scripts/test; `setup.sh test` also brings the test-only tools.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.11"
# Must equal the `wasm-bindgen = "=…"` pin in Cargo.toml.
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = .*version = "=\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml")"
BINARYEN_VERSION="132"
export PATH="$HOME/.cargo/bin:$ROOT/.tools/node_modules/.bin:$PATH"

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The toolchain named in rust-toolchain.toml (with the wasm target).
cd "$ROOT"
rustup toolchain install >/dev/null 2>&1 || rustup toolchain install

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "cargo install cargo-leptos $CARGO_LEPTOS_VERSION (takes 10-20 minutes once)"
  cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION" --features no_downloads
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lockfile names a crate version the registry no longer has.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# wasm-opt for release builds; Debian's binaryen is too old (its output never hydrates).
if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "$BINARYEN_VERSION" ]; then
  say "npm install binaryen@$BINARYEN_VERSION (wasm-opt)"
  npm install --silent --no-audit --no-fund --prefix "$ROOT/.tools" "binaryen@$BINARYEN_VERSION" >/dev/null
fi

if [ "${1:-}" = "test" ]; then
  apt_install chromium redis-server
  # The chat's browser suite, and the one of the app outside the workspace.
  for dir in end2end fixtures/news/end2end; do
    if [ ! -d "$ROOT/$dir/node_modules/@playwright/test" ]; then
      say "npm ci in $dir/"
      (cd "$ROOT/$dir" && npm ci --silent --no-audit --no-fund)
    fi
  done
fi
