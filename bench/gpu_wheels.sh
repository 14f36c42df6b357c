#!/usr/bin/env bash
# Run HERE (a machine with pip and the network), before the GPU call: downloads into .whl/ the few pure-Python packages
# that bench/gpu.py imports and the GPU machine's image lacks (fastai and what importing it pulls in; torch, torchvision,
# numpy, PIL, timm are already there). Versions: the ones this repo's .venv runs. ~2.5 MB; .whl/ is git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PY=${PY:-.venv/bin/python}
pkgs=$($PY - <<'PYEOF'
from importlib.metadata import version
names = ['fastai', 'fastcore', 'fastprogress', 'fasttransform', 'plum-dispatch', 'beartype', 'python-fasthtml',
         'starlette', 'itsdangerous', 'python-multipart', 'defusedxml']
print(' '.join(f"{n}=={version(n)}" for n in names))
PYEOF
)
rm -rf .whl && mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $pkgs
ls .whl
