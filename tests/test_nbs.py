"""Each notebook under `nbs/` is one test: nbdev runs it top to bottom in a fresh shell, skipping cells
flagged with the `tst_flags` of pyproject.toml (notest, slow, cuda). Set `LODISC_TEST_FLAGS="slow"` to run
the slow cells too (the equivalent of `nbdev-test --flags slow`)."""
import os, sys, time
from pathlib import Path
import pytest
import nbdev.test as nbt
from nbdev.config import get_config
from nbdev.doclinks import nbglob

cfg = get_config()
NBS = [p for p in sorted(nbglob(cfg.nbs_path, as_path=True)) if nbt._keep_file(p, '.notest')]
FORCE = os.environ.get("LODISC_TEST_FLAGS", "").split()

@pytest.mark.parametrize("nb", NBS, ids=[str(p.relative_to(cfg.nbs_path)) for p in NBS])
def test_notebook(nb):
    t0 = time.time()
    ok, _ = nbt.test_nb(nb, skip_flags=cfg.tst_flags, force_flags=FORCE, basepath=cfg.config_path)
    print(f"{nb.name}: {'ok' if ok else 'FAILED'} in {time.time()-t0:.1f}s", file=sys.__stdout__)
    assert ok, f"{nb} failed: its traceback is above; reproduce with `.venv/bin/nbdev-test {nb}`"
