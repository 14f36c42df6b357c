"""Run the slow grids of tutorials 02, 03, 03a and 04 in parallel, on a GPU if there is one, into the cache they read.

    python tools/tutorial_grids.py                      # all of them, 2 at a time (a 2-core CPU: hours)
    python tools/tutorial_grids.py --pages 03a          # only the garments page (34 runs and the command: ~5 h on two cores)
    python tools/tutorial_grids.py --jobs 8 --device cuda --deadline-s 420 --pack runs.tar.gz

The tutorials' slow cells call `run_grid` on the same folders (`lodisc_cache_dir()/tutorial0X/...`); `run_one`
caches each run's metrics there, so after this script the notebooks read the results instead of training.
The runs and their options are taken from the notebooks themselves (the cells that define `RUNS`/`grid`,
`runs` and `SWITCHES`/`jobs_for`; 03a's `sweep_jobs`, `choose_scale`, `keep_jobs`, `choose_keep`, `grid_jobs`,
`full_jobs`, `long_jobs` and `choose_epochs`), so there is one definition of each grid. Tutorial 03a chooses its
settings on the validation split first: its sweep runs, then its keep-ratio pair at the chosen crop scale, then its
grid, its two all-images runs and seed 0 at 45 epochs at the chosen settings, then three seeds at the epochs chosen
on valid (15 or 45) and MoCo v3 on all the images at those epochs, and last its plain `lodisc-train` command (every other option at its default) into
`tutorial03a/command`. With `--deadline-s`, no run starts after the deadline and unfinished ones are abandoned
(finished ones stay cached).
"""
import argparse, functools, json, os, sys, tarfile, time
import concurrent.futures as cf, multiprocessing as mp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def notebook_defs(name, *markers):
    "Execute the import cells of `nbs/tutorials/{name}`, then the code cells that contain each of `markers`, in order; return the namespace."
    nb = json.loads((ROOT / 'nbs' / 'tutorials' / name).read_text())
    code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
    imports = [s for s in code if s.strip() and all(l.startswith(('import ', 'from ')) for l in s.strip().splitlines())]
    ns = {}
    for s in imports + [next(s for s in code if m in s) for m in markers]: exec(s, ns)
    return ns


def garment_defs():
    "Tutorial 03a's definitions: the class lists, the base options and `job`, the sweep and its choices, the grid, the longer runs, the command."
    return notebook_defs('03a_garments.ipynb', 'GARMENTS, OTHERS =', 'def job(', 'def sweep_jobs', 'def chosen(', 'def grid_jobs', 'FULL = ',
                         'def long_jobs', 'COMMAND = ')


def all_jobs(device, cache, pages=('02', '03', '04')):
    "Every run of the slow cells of tutorials 02, 03 and 04 (or of `pages`), once each (04 shares folders with 02), most wanted first."
    j02 = j03 = j04 = []
    if '02' in pages:
        _, j02 = notebook_defs('02_lodisc_vs_mocov3.ipynb', 'def grid')['grid']([0, 1, 2], cache / 'tutorial02', epochs=20, device=device)
        j02.sort(key=lambda j: (j['pretrained'] != 'supervised', j['seed']))        # the supervised start is the main question
    if '04' in pages: j04 = notebook_defs('04_paper_vs_official_code.ipynb', 'def jobs_for')['jobs_for']([0, 1], cache, epochs=20, device=device)
    if '03' in pages:
        j03 = notebook_defs('03_fashion_mnist.ipynb', 'def runs')['runs']([0, 1, 2], cache / 'tutorial03', epochs=20, max_train_per_class=500, device=device)
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


def garment_phases(device, cache, seeds=(0, 1, 2)):
    "Tutorial 03a's runs in the order the page chooses them: a generator of job lists, each sent the metrics of the last."
    ns = garment_defs()
    root, dev = cache / 'tutorial03a', dict(device=device)
    sweep = [{**j, **dev} for j in ns['sweep_jobs'](root)]
    got = yield sweep
    scale = ns['choose_scale']([got[j['out']] for j in sweep])
    keep = [{**j, **dev} for j in ns['keep_jobs'](root, scale)]
    moco = [{**j, **dev} for j in ns['grid_jobs'](root, list(seeds), scale)[1] if j['method'] == 'MoCo v3']   # no keep ratio in them
    got = yield keep + moco                            # so they run beside the keep-ratio pair
    seen = dict(got)
    keep_ratio = ns['choose_keep']([got[j['out']] for j in keep])
    print(f"tutorial03a: chosen on valid: crop scale {scale}, keep ratio {keep_ratio}", flush=True)
    long0 = [{**j, **dev} for j in ns['long_jobs'](root, [0], scale, keep_ratio)[1]]
    got = yield ([{**j, **dev} for j in ns['grid_jobs'](root, list(seeds), scale, keep_ratio)[1] if j['method'] != 'MoCo v3']
                 + [{**j, **dev} for j in ns['full_jobs'](root, scale, keep_ratio)]     # seed 0 on all the training images
                 + long0)                                                               # seed 0 at 45 epochs
    seen = seen | got
    grid0 = ns['grid_jobs'](root, [0], scale, keep_ratio)[1][:2]                        # seed 0 of MoCo v3 and LoDisc, 15 epochs
    epochs = ns['choose_epochs']({ns['BASE']['epochs']: [seen[j['out']] for j in grid0], long0[0]['epochs']: [seen[j['out']] for j in long0]})
    print(f"tutorial03a: chosen on valid: {epochs} epochs", flush=True)
    yield ([{**j, **dev} for j in ns['long_jobs'](root, list(seeds), scale, keep_ratio, epochs)[1]]
           + [{**j, **dev} for j in ns['full_jobs'](root, scale, keep_ratio, epochs=epochs)[:1]])   # MoCo v3 on all the images at those epochs


def garment_command(device, threads=None):
    "Tutorial 03a's plain command (`run_command`: every other option its default) into `tutorial03a/command`, unless its report is there."
    import torch
    from lodisc_nb.learner import lodisc_cache_dir
    ns, out = garment_defs(), lodisc_cache_dir() / 'tutorial03a' / 'command'
    if threads: torch.set_num_threads(threads)
    return {f"{m} {k}": r[k] for m, r in ns['run_command'](out, '--device', device, '--quiet').items() for k in ('rank1', 'mAP')}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--jobs', type=int, default=2, help='runs at the same time')
    ap.add_argument('--device', default=None, help="default: cuda if available, else cpu")
    ap.add_argument('--deadline-s', type=float, default=None, help='start no run after this many seconds')
    ap.add_argument('--pack', default=None, help='write the metrics of all cached runs to this .tar.gz at the end')
    ap.add_argument('--pages', default='02,03,04,03a', help='which tutorials, e.g. 03a or 02,04')
    a = ap.parse_args()
    pages = set(a.pages.split(','))
    import torch
    from lodisc_nb.learner import lodisc_cache_dir
    from lodisc_nb.experiments import _run_one_job
    device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    cache, t0 = lodisc_cache_dir(), time.time()
    jobs = all_jobs(device, cache, pages)
    threads = max(1, (os.cpu_count() or 1) // a.jobs)
    print(f"{len(jobs)} runs" + (" + the test-every-epoch run" if '04' in pages else '') + (" + tutorial 03a's sweep and grid" if '03a' in pages else '')
          + f" on {device}, {a.jobs} at a time, {threads} threads each", flush=True)
    ex = cf.ProcessPoolExecutor(a.jobs, mp_context=mp.get_context('spawn'))
    left = lambda: float('inf') if a.deadline_s is None else a.deadline_s - (time.time() - t0)
    done = dict(n=0, abandoned=0, not_started=0)

    def run_all(queue, first=None):
        "Run `queue` (and the extra `first` job) through the pool; return {out: metrics} of the finished runs."
        queue, got = list(queue), {}
        pending = {} if first is None else {ex.submit(first[0], device): first[1]}
        def start_next():
            j = queue.pop(0); pending[ex.submit(_run_one_job, {**j, '_threads': threads})] = j['out']
        while queue and len(pending) < a.jobs: start_next()
        while pending and left() > 0:
            finished, _ = cf.wait(pending, timeout=None if a.deadline_s is None else left(), return_when=cf.FIRST_COMPLETED)
            for f in finished:
                out = pending.pop(f); done['n'] += 1
                try:
                    r = f.result(); got[out] = r
                    msg = {k: round(v, 3) for k, v in r.items()} if isinstance(r, dict) else f"{len(r)} epochs"
                except Exception as e: msg = f"FAILED: {type(e).__name__}: {e}"
                name = str(Path(out).relative_to(cache)) if Path(out).is_absolute() else out
                print(f"[{(time.time() - t0) / 60:5.1f} min] {name}: {msg}", flush=True)
                if queue and left() > 0: start_next()
        done['abandoned'] += len(pending); done['not_started'] += len(queue)
        return got

    run_all(jobs, (test_every_epoch_job, 'tutorial04/test_every_epoch') if '04' in pages else None)
    if '03a' in pages:
        phases = garment_phases(device, cache)
        try:
            todo = next(phases)
            while left() > 0:
                got = run_all(todo)
                if len(got) < len(todo): print("tutorial03a: a phase did not finish; its choices wait for the next call", flush=True); break
                todo = phases.send(got)
        except StopIteration: pass
        if left() > 0: run_all([], (functools.partial(garment_command, threads=threads), 'tutorial03a/command'))
    print(f"{done['n']} finished, {done['abandoned']} abandoned, {done['not_started']} not started, {(time.time() - t0) / 60:.1f} min", flush=True)
    if a.pack: pack(cache, a.pack); print("packed", a.pack, flush=True)
    for p in list(getattr(ex, '_processes', {}).values()): p.kill()
    ex.shutdown(wait=False, cancel_futures=True)
    os._exit(0)


if __name__ == '__main__': main()
