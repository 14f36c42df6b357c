"""Run the slow grids of tutorials 02, 03 and 04 in parallel, on a GPU if there is one, into the cache they read.

    python tools/tutorial_grids.py                      # all of them, 2 at a time (a 2-core CPU: hours)
    python tools/tutorial_grids.py --jobs 8 --device cuda --deadline-s 420 --pack runs.tar.gz

The tutorials' slow cells call `run_grid` on the same folders (`lodisc_cache_dir()/tutorial0X/...`); `run_one`
caches each run's metrics there, so after this script the notebooks read the results instead of training.
The runs and their options are taken from the notebooks themselves (the cells that define `RUNS`/`grid`,
`runs` and `SWITCHES`/`jobs_for`), so there is one definition of each grid. With `--deadline-s`, no run
starts after the deadline and unfinished ones are abandoned (finished ones stay cached).
"""
import argparse, json, os, sys, tarfile, time
import concurrent.futures as cf, multiprocessing as mp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def notebook_defs(name, marker):
    "Execute the import cells of `nbs/tutorials/{name}`, then the code cell that contains `marker`; return the namespace."
    nb = json.loads((ROOT / 'nbs' / 'tutorials' / name).read_text())
    code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
    imports = [s for s in code if s.strip() and all(l.startswith(('import ', 'from ')) for l in s.strip().splitlines())]
    ns = {}
    for s in imports + [next(s for s in code if marker in s)]: exec(s, ns)
    return ns


def all_jobs(device, cache):
    "Every run of the three tutorials' slow cells, once each (tutorial 04 shares folders with 02), most wanted first."
    t02 = notebook_defs('02_lodisc_vs_mocov3.ipynb', 'def grid')
    t03 = notebook_defs('03_fashion_mnist.ipynb', 'def runs')
    t04 = notebook_defs('04_paper_vs_official_code.ipynb', 'def jobs_for')
    _, j02 = t02['grid']([0, 1, 2], cache / 'tutorial02', epochs=20, device=device)
    j02.sort(key=lambda j: (j['pretrained'] != 'supervised', j['seed']))        # the supervised start is the main question
    j04 = t04['jobs_for']([0, 1], cache, epochs=20, device=device)
    j03 = t03['runs']([0, 1, 2], cache / 'tutorial03', epochs=20, max_train_per_class=500, device=device)
    seen, jobs = set(), []
    for j in j02 + j03 + j04:
        if j['out'] not in seen: seen.add(j['out']); jobs.append(j)
    return jobs


def test_every_epoch_job(device):
    "Tutorial 04's section 6 (the default run, test metrics after every epoch), through the notebook's own function."
    ns = notebook_defs('04_paper_vs_official_code.ipynb', 'def test_every_epoch')
    return ns['test_every_epoch'](seed=0, epochs=20, device=device)


def pack(cache, dest):
    "The runs' metrics and histories (not the checkpoints) as one archive, relative to the cache folder."
    with tarfile.open(dest, 'w:gz') as tar:
        for f in sorted(cache.rglob('*')):
            if f.is_file() and (f.name in ('metrics.json', 'history.csv') or f.name.startswith('test_every_epoch')):
                tar.add(f, arcname=str(f.relative_to(cache)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--jobs', type=int, default=2, help='runs at the same time')
    ap.add_argument('--device', default=None, help="default: cuda if available, else cpu")
    ap.add_argument('--deadline-s', type=float, default=None, help='start no run after this many seconds')
    ap.add_argument('--pack', default=None, help='write the metrics of all cached runs to this .tar.gz at the end')
    a = ap.parse_args()
    import torch
    from lodisc_nb.learner import lodisc_cache_dir
    from lodisc_nb.experiments import _run_one_job
    device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    cache, t0 = lodisc_cache_dir(), time.time()
    jobs = all_jobs(device, cache)
    threads = max(1, (os.cpu_count() or 1) // a.jobs)
    print(f"{len(jobs)} runs + the test-every-epoch run on {device}, {a.jobs} at a time, {threads} threads each", flush=True)
    ex = cf.ProcessPoolExecutor(a.jobs, mp_context=mp.get_context('spawn'))
    left = lambda: float('inf') if a.deadline_s is None else a.deadline_s - (time.time() - t0)
    pending, queue, done_n = {ex.submit(test_every_epoch_job, device): 'tutorial04/test_every_epoch'}, list(jobs), 0
    def start_next():
        j = queue.pop(0); pending[ex.submit(_run_one_job, {**j, '_threads': threads})] = str(Path(j['out']).relative_to(cache))
    while queue and len(pending) < a.jobs: start_next()
    while pending and left() > 0:
        finished, _ = cf.wait(pending, timeout=None if a.deadline_s is None else left(), return_when=cf.FIRST_COMPLETED)
        for f in finished:
            name = pending.pop(f); done_n += 1
            try:
                r = f.result()
                msg = {k: round(v, 3) for k, v in r.items()} if isinstance(r, dict) else f"{len(r)} epochs"
            except Exception as e: msg = f"FAILED: {type(e).__name__}: {e}"
            print(f"[{(time.time() - t0) / 60:5.1f} min] {name}: {msg}", flush=True)
            if queue and left() > 0: start_next()
    print(f"{done_n} finished, {len(pending)} abandoned, {len(queue)} not started, {(time.time() - t0) / 60:.1f} min", flush=True)
    if a.pack: pack(cache, a.pack); print("packed", a.pack, flush=True)
    for p in list(getattr(ex, '_processes', {}).values()): p.kill()
    ex.shutdown(wait=False, cancel_futures=True)
    os._exit(0)


if __name__ == '__main__': main()
