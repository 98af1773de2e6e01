#!/usr/bin/env bash
# The text_to_video test venv, .venv-t2v: Python 3.11 + the CPU torch wheel + diffusers, plus the
# worker's own requirements. Idempotent and quick when nothing changed (a stamp holds the inputs' hash).
#
# Why a second venv: the main one is Python 3.12 (Vercel's runtime), and a torch for 3.12 from PyPI
# is the multi-GB CUDA build; the CPU wheel on these machines is for CPython 3.11 (pip find-links).
# PyAV 19 (the worker's pin) needs Python 3.12, so 3.11 gets the newest 18.x; numpy likewise. The
# video_analysis processor uses PyAV 19 APIs: this venv's worker runs text_to_video only.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-t2v
PY311=${PY311:-$(PYENV_VERSION=3.11.7 pyenv which python3.11 2>/dev/null || command -v python3.11 || true)}
if [ -z "$PY311" ]; then
  echo "setup-t2v: python3.11 not found (set PY311=/path/to/python3.11)" >&2
  exit 1
fi

stamp="$VENV/.installed"
want=$(cat hf-worker/requirements.txt hf-worker/requirements-gpu.txt "$0" | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

test -x "$VENV/bin/python" || "$PY311" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# The worker's requirements minus the pins that have no 3.11 wheel (PyAV 19, numpy 2.5): their
# newest 3.11 releases instead.
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
grep -v -E '^(av|numpy)==' hf-worker/requirements.txt > "$reqs"
# torch==2.13.0 resolves to the local CPU wheel (pip's find-links) where there is one; elsewhere
# PyTorch's CPU index provides it (PyPI's Linux wheel would be the CUDA build).
torch_src=()
links=$("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true)
if ! compgen -G "${links:-/nonexistent}/torch-2.13.0+cpu-*.whl" >/dev/null; then
  torch_src=(--extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}")
fi
echo "installing $VENV (torch CPU, diffusers; about a minute the first time)"
"$VENV/bin/python" -m pip install -q "${torch_src[@]}" -r "$reqs" -r hf-worker/requirements-gpu.txt \
  av==18.1.0 numpy==2.4.6
"$VENV/bin/python" -c "import torch, diffusers; print('setup-t2v: torch', torch.__version__, 'diffusers', diffusers.__version__)"
echo "$want" > "$stamp"
