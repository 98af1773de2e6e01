#!/usr/bin/env bash
# Installs what the tests need beyond Python packages, once; quick when everything is there.
# Debian packages need root (CI and these dev machines run as root); elsewhere it says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)  # ffprobe cross-checks metadata; ffmpeg is the bench baseline
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need_apt+=(postgresql-15)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing system packages: ${need_apt[*]} (install them with your package manager)" >&2
    exit 1
  fi
fi

# The Vercel CLI for the deployment-artifact test (pinned; into .tools/, never the repo root).
bash scripts/install-vercel-cli.sh

# The text_to_video test venv (Python 3.11 + CPU torch + diffusers): see scripts/setup-t2v.sh.
bash scripts/setup-t2v.sh
