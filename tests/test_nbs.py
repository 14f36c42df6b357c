"""Each notebook under `nbs/` is one test: nbdev runs it top to bottom in a fresh shell, skipping cells
flagged with the `tst_flags` of pyproject.toml (notest, slow, cuda). Set `LODISC_TEST_FLAGS="slow"` to run
the slow cells too (the equivalent of `nbdev-test --flags slow`).

nbdev runs the notebooks inside this process, so whatever a notebook changes in the process (environment
variables, the working folder, torch's thread count) would leak into the next notebook of the same pytest worker;
each test puts them back as they were."""
import os, sys, time
from contextlib import contextmanager
from pathlib import Path
import pytest
import torch
import nbdev.test as nbt
from nbdev.config import get_config
from nbdev.doclinks import nbglob

cfg = get_config()
NBS = [p for p in sorted(nbglob(cfg.nbs_path, as_path=True)) if nbt._keep_file(p, '.notest')]
FORCE = os.environ.get("LODISC_TEST_FLAGS", "").split()

@contextmanager
def process_state():
    "Put the environment, the working folder and torch's thread count back as they were before the block."
    env, cwd, threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    try: yield
    finally:
        os.environ.clear(); os.environ.update(env)
        os.chdir(cwd); torch.set_num_threads(threads)

@pytest.mark.parametrize("nb", NBS, ids=[str(p.relative_to(cfg.nbs_path)) for p in NBS])
def test_notebook(nb):
    t0 = time.time()
    with process_state(): ok, _ = nbt.test_nb(nb, skip_flags=cfg.tst_flags, force_flags=FORCE, basepath=cfg.config_path)
    print(f"{nb.name}: {'ok' if ok else 'FAILED'} in {time.time()-t0:.1f}s", file=sys.__stdout__)
    assert ok, f"{nb} failed: its traceback is above; reproduce with `.venv/bin/nbdev-test {nb}`"

def test_process_state(tmp_path):
    "What a notebook changes (here: a variable, LODISC_CACHE, the folder, the threads) is undone after it."
    before = (dict(os.environ), os.getcwd(), torch.get_num_threads())
    with process_state():
        os.environ['LODISC_LEAK_CHECK'] = '1'; os.environ['LODISC_CACHE'] = str(tmp_path)
        os.chdir(tmp_path); torch.set_num_threads(before[2] + 1)
    assert (dict(os.environ), os.getcwd(), torch.get_num_threads()) == before
