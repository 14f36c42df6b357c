"""Shared pytest setup: offline, one torch thread per worker (two workers share two cores), and one cache.

The notebooks' supervised start (`pretrained='supervised'`, `lodisc-train --pretrained supervised`) is cached under `$LODISC_CACHE`.
Unless the caller sets it, the test run gets a fresh temporary cache (nothing is written to the user's
`~/.cache`), and the controlling process trains the default start into it *once, before any notebook runs*, so
no notebook cell waits minutes on it (under pytest-xdist the workers inherit the variable). Set `LODISC_CACHE`
to a folder of your own to keep the start between runs."""
import os, shutil, sys, tempfile, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

_TEMP_CACHE = None

def _is_worker(config): return hasattr(config, 'workerinput')

def pytest_configure(config):
    global _TEMP_CACHE
    try:
        import torch
    except ImportError: return
    if not _is_worker(config) and 'LODISC_CACHE' not in os.environ:
        _TEMP_CACHE = tempfile.mkdtemp(prefix='lodisc_test_cache_')
        os.environ['LODISC_CACHE'] = _TEMP_CACHE
    if not _is_worker(config) and not config.option.collectonly and _needs_start(config):
        from lodisc_nb.learner import supervised_init
        t0 = time.time()
        torch.set_num_threads(1)   # one thread: with other processes on the cores, more threads than free cores
                                   # make torch's OpenMP threads wait on each other (10x slower, measured under load)
        supervised_init(verbose=False)
        print(f"conftest: supervised start ready in {os.environ['LODISC_CACHE']} ({time.time() - t0:.0f} s)", file=sys.__stdout__)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

def _needs_start(config):
    "Only runs that include the notebook tests need the start."
    args = [str(a) for a in config.args] or ['tests']
    return any('test_nbs' in a or a.rstrip('/').endswith('tests') for a in args)

def pytest_unconfigure(config):
    if _TEMP_CACHE and not _is_worker(config): shutil.rmtree(_TEMP_CACHE, ignore_errors=True)
