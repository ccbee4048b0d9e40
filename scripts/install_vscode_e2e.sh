#!/usr/bin/env bash
# Installs what the real VS Code test (tests/editors/test_vscode_e2e.py) needs, once per machine:
#   - Debian's chromium (driven by playwright-core) and libkrb5-dev (code-server builds its
#     kerberos module from source);
#   - Node 24 from the npm package `node` (code-server needs it), then code-server and
#     playwright-core, built with that Node.
# The npm installs live in a cache folder keyed by the lock files' hash, so a fresh clone on the
# same machine links them in seconds; node_modules in the checkout are symlinks into it.
# Best effort: without root or a registry the test skips locally (and fails under CI).
set -euo pipefail
cd "$(dirname "$0")/.."
E2E=tests/editors/vscode_e2e
CACHE_ROOT="${SWARM_VSCODE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarm-lsp/vscode-e2e}"

apt_packages=()
command -v chromium >/dev/null || apt_packages+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || apt_packages+=(libkrb5-dev)
command -v g++ >/dev/null && command -v make >/dev/null || apt_packages+=(build-essential)
if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  else
    echo "VS Code test: not root, cannot install ${apt_packages[*]}; the test will skip" >&2
    exit 0
  fi
fi
if ! command -v npm >/dev/null; then
  echo "VS Code test: npm is missing; the test will skip" >&2
  exit 0
fi

key=$(cat "$E2E/package-lock.json" "$E2E/node24/package-lock.json" | sha256sum | cut -c1-16)
home="$CACHE_ROOT/$key"
if [ ! -f "$home/.installed" ]; then
  echo "VS Code test: installing Node 24, code-server and playwright-core into $home"
  rm -rf "$home"
  mkdir -p "$home/node24"
  cp "$E2E/node24/package.json" "$E2E/node24/package-lock.json" "$home/node24/"
  cp "$E2E/package.json" "$E2E/package-lock.json" "$home/"
  (cd "$home/node24" && npm ci --no-audit --no-fund --loglevel=error)
  node24="$home/node24/node_modules/.bin"
  "$node24/node" --version | grep -q '^v24\.'
  # npm under Node 24, so code-server's postinstall sees v24 and builds its native modules
  # against Node 24's headers (shipped in the same package: node-gyp downloads nothing).
  (cd "$home" && PATH="$node24:$PATH" \
    npm_config_nodedir="$(echo "$home"/node24/node_modules/node/node_modules/node-linux-*)" \
    npm ci --no-audit --no-fund --loglevel=error)
  touch "$home/.installed"
  # Installs for older lock files are ~800 MB each: keep only this one.
  find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
fi
# Point the checkout at the cached installs (replace whatever was there).
for sub in . node24; do
  link="$E2E/$sub/node_modules"
  if [ -L "$link" ] || [ -e "$link" ]; then
    [ "$(readlink "$link")" = "$home/$sub/node_modules" ] && continue
    rm -rf "$link"
  fi
  ln -s "$home/$sub/node_modules" "$link"
done
echo "VS Code test: ready ($home)"
