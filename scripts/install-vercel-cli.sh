#!/usr/bin/env bash
# One-time set-up for `vercel build` (tests/deploy): the Vercel CLI, uv and a python3.12.
#
# Everything lands in .tools/ (git-ignored) so the deployed project never gets a package.json:
#   .tools/vercel/   npm prefix holding vercel@$VERCEL_VERSION
#   .tools/bin/      vercel, uv, python3.12 links; put it first on PATH for `vercel build`
# Idempotent: when the pinned CLI and the links are already there it only checks them (< 1 s).
# Needs: node/npm (20+), the npm and PyPI registries (or warm caches), and a python3.12
# (PYTHON312=/path, a python3.12 on PATH, or pyenv 3.12.x).
set -euo pipefail

VERCEL_VERSION="${VERCEL_VERSION:-58.10.0}"  # newer releases don't install on these machines
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PREFIX="$TOOLS/vercel"
BIN="$TOOLS/bin"
VENV_PY="$ROOT/.venv/bin/python"

mkdir -p "$PREFIX" "$BIN"

# 1. The Vercel CLI, pinned exactly. The version check reads package.json: `vercel --version` is slow.
installed="$(node -p "require('$PREFIX/node_modules/vercel/package.json').version" 2>/dev/null || true)"
if [[ "$installed" != "$VERCEL_VERSION" ]]; then
  echo "installing vercel@$VERCEL_VERSION into $PREFIX" >&2
  # Our own tiny manifest so npm never walks up to (or writes) a package.json at the repo root.
  [[ -f "$PREFIX/package.json" ]] || echo '{"private": true}' > "$PREFIX/package.json"
  npm install --prefix "$PREFIX" --save-exact --no-audit --no-fund --loglevel=error "vercel@$VERCEL_VERSION"
fi
ln -sfn "$PREFIX/node_modules/.bin/vercel" "$BIN/vercel"

# 2. uv: the Python builder resolves and installs requirements with it.
if [[ ! -x "$ROOT/.venv/bin/uv" ]]; then
  [[ -x "$VENV_PY" ]] || { echo "error: $ROOT/.venv is missing; create it first" >&2; exit 1; }
  "$VENV_PY" -m pip install --quiet uv
fi
ln -sfn "$ROOT/.venv/bin/uv" "$BIN/uv"

# 3. python3.12: the builder runs `python3.12` from PATH. Link the real binary, not a pyenv shim
#    (a shim fails when the global pyenv version isn't 3.12).
find_py312() {
  local cand
  for cand in "${PYTHON312:-}" \
              "$(PYENV_VERSION="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | tail -1)" \
                 pyenv which python3.12 2>/dev/null || true)" \
              "$(command -v python3.12 || true)"; do
    if [[ -n "$cand" && -x "$cand" ]] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  return 1
}
current="$(readlink "$BIN/python3.12" 2>/dev/null || true)"
if [[ -z "$current" || ! -x "$current" ]]; then
  py="$(find_py312)" || { echo "error: no python3.12 found (set PYTHON312=/path/to/python3.12)" >&2; exit 1; }
  ln -sfn "$py" "$BIN/python3.12"
fi

echo "vercel $VERCEL_VERSION, $("$BIN/uv" --version), $("$BIN/python3.12" --version) in $BIN" >&2
