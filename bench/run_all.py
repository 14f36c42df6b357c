"""Run every bench script and write one table of the ratios that matter: bench/results/latest.md (+ latest.json).

    .venv/bin/python bench/run_all.py              # all scripts, sizes that fit < 10 min on 2 CPU cores
    .venv/bin/python bench/run_all.py --quick      # BENCH_QUICK=1 for every script (smoke test; numbers mean nothing)
    .venv/bin/python bench/run_all.py --only mask.py step.py --threads 1
    .venv/bin/python bench/run_all.py --only step.py --merge     # re-run one script, keep the others' results

Each script runs in its own process with `BENCH_JSON` set, so a script that crashes or times out is reported
and the others still run. The headline table (what, ratio, target, met?, machine, date) picks one number from
each script's rows; the full tables of every script follow it. `--quick` writes bench/results/quick.md unless
`--out` says otherwise, so a smoke run never overwrites the real results. `gpu.py` joins when CUDA is
available (or with `--gpu`); on a CPU-only machine it is run by the tests at its tiny size instead.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# script -> extra arguments for the full run (sizes/reps chosen so that all of them fit in < 10 min on 2 CPU cores)
SCRIPTS = {'mask.py': [], 'eval.py': [], 'vit.py': ['--reps', '10'], 'momentum.py': ['--reps', '10'],
           'data.py': [], 'step.py': ['--reps', '6'], 'gpu.py': []}


def _rows(reports, title_has):
    "All rows of the reports whose title contains `title_has` (case-insensitive)."
    return [r for rep in reports if title_has.lower() in rep['title'].lower() for r in rep['rows']]

QUICK = False  # set by main(): quick runs use other sizes, so a headline falls back to the first row with `key`

def _pick(reports, title_has, key, **match):
    "`row[key]` of the first row (in a report whose title contains `title_has`) whose fields match `match`."
    rows = [r for r in _rows(reports, title_has) if key in r]
    for r in rows:
        if all(str(r.get(k, '')).startswith(str(v)) for k, v in match.items()): return r[key]
    if QUICK and rows: return rows[0][key]
    raise LookupError(f"no row with {match} and '{key}' in a report titled '*{title_has}*'")

def _machine(reports, title_has):
    for rep in reports:
        if title_has.lower() in rep['title'].lower(): return rep['machine']
    return ''

def _gpu(reports, candidate, key):
    "`key` of gpu.py's final-table row named exactly `candidate` (nan when it is missing)."
    rows = [r for r in _rows(reports, 'GPU throughput') if r.get('candidate') == candidate]
    return _num(rows[0][key]) if rows else float('nan')

def _best(reports, prefix, key):
    "The largest `key` among gpu.py's final-table rows whose candidate starts with `prefix` (nan when none)."
    vals = [_num(r[key]) for r in _rows(reports, 'GPU throughput') if r.get('candidate', '').startswith(prefix)]
    vals = [v for v in vals if v == v]
    return max(vals) if vals else float('nan')

def _num(v):
    try: return float(v)
    except (TypeError, ValueError): return float('nan')

def _div(a, b):
    a, b = _num(a), _num(b)
    return a / b if b else float('nan')

# The headline: (script, what, how to get the number, target text, test). `get` returns a float from the script's reports.
HEADLINES = [
    ('mask.py', 'Keep mask + pixel mask, vectorised vs the official Python loops (speed-up)',
     lambda R: _pick(R, 'Keep mask', 'speedup', candidate='vectorised'), '>= 50x', lambda v: v >= 50),
    ('eval.py', 'Leave-one-out retrieval, blocks vs the per-query loop (speed-up)',
     lambda R: max(_num(r['speedup_vs_loop']) for r in _rows(R, 'Leave-one-out retrieval') if r.get('candidate') == 'blocks'),
     '>= 15x', lambda v: v >= 15),
    ('vit.py', 'Class-token attention rows beside SDPA, over a plain forward (ViT-Tiny, 64 patches)',
     lambda R: _pick(R, 'ViT-Tiny forward', 'cls_attn_over_plain', patch=4), '<= 1.15x', lambda v: v <= 1.15),
    ('vit.py', 'Class-token rows over the explicit N x N maps (ViT-Tiny, 64 patches)',
     lambda R: _pick(R, 'ViT-Tiny forward', 'cls_attn_over_full_maps', patch=4), '< 1x', lambda v: v < 1),
    ('vit.py', 'Forward on 30% of the tokens over all tokens (ViT-Tiny, 64 patches)',
     lambda R: _pick(R, 'ViT-Tiny forward', 'keep30_over_plain', patch=4), '<= 0.5x', lambda v: v <= 0.5),
    ('momentum.py', 'Momentum update, per-parameter loop over foreach (ViT-Tiny + projector)',
     lambda R: _pick(R, 'Momentum update', 'loop_over_foreach', arch='vit_tiny'), '>= 1x', lambda v: v >= 1),
    ('momentum.py', "Momentum update, the official code's out-of-place loop over foreach (per update; it runs 4 per step)",
     lambda R: _pick(R, 'Momentum update', 'official_over_foreach', arch='vit_tiny'), '>= 1x', lambda v: v >= 1),
    ('momentum.py', 'Momentum update, foreach mul+add over one foreach lerp (ViT-Tiny + projector)',
     lambda R: _pick(R, 'Momentum update', 'foreach_over_lerp', arch='vit_tiny'), '(measured)', None),
    ('data.py', 'Data path (next batch + two augmented views) over a ViT-Tiny training step (32 px)',
     lambda R: _pick(R, 'Data path', 'data_over_step', size=32), '<= 0.33x', lambda v: v <= 1 / 3),
    ('step.py', 'Training step, LoDisc (token dropping) over MoCo v3',
     lambda R: _pick(R, 'Training step', 'vs_mocov3', variant='LoDisc drop'), '<= 1.35x', lambda v: v <= 1.35),
    ('step.py', 'Training step, LoDisc (pixel masking, official) over MoCo v3',
     lambda R: _pick(R, 'Training step', 'vs_mocov3', variant='LoDisc pixel'), '<= 1.5x', lambda v: v <= 1.5),
    ('step.py', 'Peak memory of a training step, LoDisc (token dropping) over MoCo v3',
     lambda R: _div(_pick(R, 'Training step', 'peak_mb', variant='LoDisc drop'),
                    _pick(R, 'Training step', 'peak_mb', variant='MoCo v3')), '<= 1.2x', lambda v: v <= 1.2),
    ('gpu.py', 'GPU images/s, MoCo v3, best of eager / compiled (H200 target: >= 2,900; was 2,033)',
     lambda R: _best(R, 'MoCo v3', 'images_per_s'), '>= 2900 img/s', lambda v: v >= 2900),
    ('gpu.py', 'GPU images/s, LoDisc (token dropping), best of eager / compiled',
     lambda R: _best(R, 'LoDisc drop', 'images_per_s'), '(measured)', None),
    ('gpu.py', 'GPU step, LoDisc (token dropping) over MoCo v3 (batched, eager)',
     lambda R: _gpu(R, 'LoDisc drop', 'vs_mocov3'), '<= 1.12x', lambda v: v <= 1.12),
    ('gpu.py', 'GPU step, LoDisc (pixel masking) over MoCo v3 (batched, eager)',
     lambda R: _gpu(R, 'LoDisc pixel', 'vs_mocov3'), '<= 1.28x', lambda v: v <= 1.28),
    ('gpu.py', 'GPU step, batched over per-view encoder calls (MoCo v3, eager)',
     lambda R: _gpu(R, 'MoCo v3', 'vs_per_view'), '< 1x', lambda v: v < 1),
    ('gpu.py', 'GPU step, compiled over eager (MoCo v3, best compile setup)',
     lambda R: min((_num(r['vs_eager']) for r in _rows(R, 'GPU throughput') if r['candidate'].startswith('MoCo v3 compiled')),
                   default=float('nan')), '<= 0.9x', lambda v: v <= 0.9),
    ('gpu.py', 'GPU MFU, MoCo v3 (FLOPs counted from the model over the dense bf16 peak), best of eager / compiled',
     lambda R: _best(R, 'MoCo v3', 'mfu'), '(measured)', None),
    ('gpu.py', 'JPEG data path speed over the fastest training step speed, best way',
     lambda R: max((_num(r.get('over_fastest_step')) for r in _rows(R, 'Data path: JPEG')
                    if not r['path'].startswith(('in memory', 'PIL workers feeding'))), default=float('nan')),
     '>= 1.5x', lambda v: v >= 1.5),
]
_TITLE = {'mask.py': 'Keep mask', 'eval.py': 'Leave-one-out', 'vit.py': 'ViT-Tiny', 'momentum.py': 'Momentum',
          'data.py': 'Data path', 'step.py': 'Training step', 'gpu.py': 'GPU throughput'}


def run_script(name, args, env, timeout):
    "Run one bench script in its own process; returns (status, seconds, stdout+stderr, reports)."
    with tempfile.NamedTemporaryFile('w+', suffix='.jsonl', delete=False) as f: jpath = f.name
    env = {**env, 'BENCH_JSON': jpath}
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, str(HERE / name), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout)
        status, out = ('ok' if p.returncode == 0 else f'failed (exit {p.returncode})'), p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        status = f'timed out after {timeout:.0f} s'
        out = ''.join(s.decode() if isinstance(s, bytes) else (s or '') for s in (e.stdout, e.stderr))
    secs = time.perf_counter() - t0
    reports = [json.loads(l) for l in Path(jpath).read_text().splitlines() if l.strip()]
    os.unlink(jpath)
    return status, secs, out, reports


def _fmt(v):
    if isinstance(v, float):
        if v != v: return 'nan'
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)

def _table(keys, rows):
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return lines + ["| " + " | ".join(_fmt(r.get(k, '')) for k in keys) + " |" for r in rows]


def headlines(results, date):
    "The headline rows from the scripts' results (script -> dict(status, reports))."
    out = []
    for script, what, get, target, test in HEADLINES:
        res = results.get(script)
        if res is None: continue                                   # not run (missing, --only, no GPU)
        row = dict(what=what, ratio='—', target=target, met='—', machine='', date=res.get('date', date), script=script)
        try:
            v = float(get(res['reports']))
            row['ratio'] = v
            row['met'] = '—' if test is None or v != v else ('yes' if test(v) else 'no')
            row['machine'] = _machine(res['reports'], _TITLE[script]) or (res['reports'][0]['machine'] if res['reports'] else '')
        except Exception as e:                                    # the script failed or changed its rows
            row['met'] = f"no number ({res['status']})" if res['status'] != 'ok' else f"no number ({type(e).__name__}: {e})"
        out.append(row)
    return out


def _ratio_text(h):
    v = h['ratio']
    if not isinstance(v, float): return v
    if v != v: return '—'
    if 'MFU' in h['what']: return f"{100 * v:.1f}%"
    return f"{v:.0f} img/s" if 'images/s' in h['what'] else f"{v:.3g}x"


def to_markdown(results, heads, date, total_s, quick, argv, kept=()):
    lines = ["# Benchmark results", "",
             f"Run {date} with `python bench/run_all.py {' '.join(argv)}`".rstrip() + f" in {total_s:.0f} s"
             + (" — **quick smoke run: sizes are tiny, the numbers mean nothing**" if quick else "") + ".",
             f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
             + (f" Kept from earlier runs (see their dates): {', '.join(kept)}." if kept else ""), ""]
    lines += ["## Headline ratios", ""]
    lines += _table(['what', 'ratio', 'target', 'met', 'machine', 'date'],
                    [{**h, 'ratio': _ratio_text(h)} for h in heads])
    lines += ["", "Each ratio is one median over another, both measured interleaved in the same run (bench/_harness.py "
              "`compare`). A speed-up is the slow candidate's time over the fast one's (> 1: the library's way is faster); "
              "'A over B' is A's time over B's (< 1: A is faster); the peak-memory row divides memory, the GPU rows are "
              "images per second.", ""]
    lines += ["## Scripts", ""]
    lines += _table(['script', 'status', 'seconds', 'date'], [dict(script=k, status=v['status'], seconds=v['seconds'], date=v['date'])
                                                               for k, v in results.items()])
    lines += ["", "## Details", ""]
    for name, res in results.items():
        for rep in res['reports']:
            lines += [f"### {rep['title']}", "", f"`{name}` — Machine: {rep['machine']}", ""]
            lines += _table(list(rep['rows'][0]), rep['rows']) if rep['rows'] else []
            if rep.get('notes'): lines += ["", rep['notes']]
            lines.append("")
        if res['status'] != 'ok':
            lines += [f"### `{name}`: {res['status']}", "", "```", *res['output'].strip().splitlines()[-15:], "```", ""]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='BENCH_QUICK=1 for every script: tiny sizes, a smoke test')
    ap.add_argument('--only', nargs='+', help='run only these scripts (names as in bench/)')
    ap.add_argument('--gpu', action='store_true', help='run gpu.py even without CUDA (at its tiny size)')
    ap.add_argument('--threads', type=int, help='OMP/MKL threads for every script (default: torch decides)')
    ap.add_argument('--timeout', type=float, default=420, help='seconds per script before it is stopped')
    ap.add_argument('--out', help='markdown file (default bench/results/latest.md, or quick.md with --quick)')
    ap.add_argument('--merge', action='store_true',
                    help="keep the earlier results (from the --out file's .json) of the scripts not run this time")
    a = ap.parse_args(argv)
    global QUICK
    QUICK = a.quick or os.environ.get('BENCH_QUICK', '') not in ('', '0')
    try:
        import torch; cuda = torch.cuda.is_available()
    except ImportError: cuda = False
    names = a.only or [s for s in SCRIPTS if s != 'gpu.py' or cuda or a.gpu]
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown: ap.error(f"unknown script(s) {unknown}; choose from {list(SCRIPTS)}")
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    if QUICK: env['BENCH_QUICK'] = '1'
    if a.threads: env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(a.threads)
    date = datetime.now().strftime('%Y-%m-%d %H:%M')
    t0, results = time.perf_counter(), {}
    for i, name in enumerate(names, 1):
        if not (HERE / name).exists():
            print(f"[{i}/{len(names)}] {name}: missing, skipped", flush=True)
            results[name] = dict(status='missing', seconds=0., output='', reports=[], date=date); continue
        print(f"[{i}/{len(names)}] {name} ...", flush=True)
        status, secs, out, reports = run_script(name, SCRIPTS[name], env, a.timeout)
        results[name] = dict(status=status, seconds=secs, output=out, reports=reports, date=datetime.now().strftime('%Y-%m-%d %H:%M'))
        print(out if status != 'ok' else "\n".join(l for l in out.splitlines() if not l.startswith(('W1', 'I1'))), flush=True)
        print(f"[{i}/{len(names)}] {name}: {status} in {secs:.0f} s\n", flush=True)
    total = time.perf_counter() - t0
    out = Path(a.out) if a.out else HERE / 'results' / ('quick.md' if QUICK else 'latest.md')
    kept = {}
    if a.merge and out.with_suffix('.json').exists():
        old = json.loads(out.with_suffix('.json').read_text())
        kept = {k: {**v, 'output': '', 'date': v.get('date', old['date'])} for k, v in old['scripts'].items() if k not in results}
        results = {k: results.get(k) or kept[k] for k in [*SCRIPTS, *results, *kept] if k in results or k in kept}
        print(f"kept the earlier results of {', '.join(kept) or 'no script'} from {out.with_suffix('.json')}")
    heads = headlines(results, date)
    md = to_markdown(results, heads, date, total, QUICK, argv, list(kept))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    out.with_suffix('.json').write_text(json.dumps(dict(
        date=date, seconds=total, quick=QUICK, argv=argv, headlines=heads,
        scripts={k: dict(status=v['status'], seconds=v['seconds'], date=v['date'], reports=v['reports'])
                 for k, v in results.items()}),
        indent=1) + "\n")
    print(md)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    failed = [k for k in names if results[k]['status'] not in ('ok', 'missing')]   # this run's scripts only
    if failed: print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__': sys.exit(main())
