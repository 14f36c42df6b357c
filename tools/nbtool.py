"""Small authoring helpers for the notebooks in `nbs/` (the notebooks stay the source of truth).

    python tools/nbtool.py run nbs/00_sets.ipynb [--timeout 1200]
        execute every cell (slow ones included; `eval: false` and, without a GPU, `cuda` ones skipped) with a Jupyter kernel, save the outputs into the notebook
        (the docs show them), then `nbdev-clean` it. Figures and logs in the docs come from this.
    python tools/nbtool.py from-py draft.py nbs/00_sets.ipynb
        turn a jupytext "percent" draft (`# %%` cells) into the notebook, keeping the saved outputs of cells
        whose source did not change. Needs `pip install jupytext`.
"""
import argparse, json, os, subprocess, sys
from pathlib import Path

KERNELSPEC = {"display_name": "python3", "language": "python", "name": "python3"}

def _bin(name): return str(Path(sys.executable).with_name(name))

def tidy_metadata(nb):
    "Notebook metadata: a python3 kernelspec, nothing from the authoring tools."
    nb['metadata'] = {k: v for k, v in nb.get('metadata', {}).items() if k not in ('jupytext', 'kernelspec')}
    nb['metadata']['kernelspec'] = KERNELSPEC
    return nb

def from_py(src, dest):
    import jupytext
    new = json.loads(jupytext.writes(jupytext.read(src), fmt='ipynb'))
    dest = Path(dest)
    if dest.exists():  # keep outputs of unchanged cells
        old = {''.join(c['source']): c for c in json.loads(dest.read_text())['cells'] if c['cell_type'] == 'code'}
        for c in new['cells']:
            o = old.get(''.join(c['source'])) if c['cell_type'] == 'code' else None
            if o is not None: c['outputs'] = o.get('outputs', [])
    dest.write_text(json.dumps(tidy_metadata(new), indent=1, ensure_ascii=False) + "\n")
    subprocess.run([_bin('nbdev-clean'), '--fname', str(dest)], check=True)
    print(f"wrote {dest} ({len(new['cells'])} cells)")

def _skip(src, cuda):
    "Cells nbdev would not run here: `#| eval: false`, and `#| cuda` ones on a machine without CUDA."
    flags = [l[3:].strip() for l in src.splitlines() if l.startswith('#|')]
    return 'eval: false' in flags or (not cuda and any(f.split()[:1] == ['cuda'] for f in flags))

def _tag(nb, cuda, on):
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        tags = [t for t in c.get('metadata', {}).get('tags', []) if t != 'skip-execution']
        if on and _skip(''.join(c['source']), cuda): tags.append('skip-execution')
        if tags: c.setdefault('metadata', {})['tags'] = tags
        else: c.get('metadata', {}).pop('tags', None)
    return nb

def _drop_unused_widget_state(nb):
    "nbclient saves every widget's state (figures included) even when no output displays one: drop it then."
    shown = any('application/vnd.jupyter.widget-view+json' in o.get('data', {})
                for c in nb['cells'] for o in c.get('outputs', []))
    if not shown: nb.get('metadata', {}).pop('widgets', None)
    return nb

def run(nb, timeout=1200):
    nb = Path(nb)
    import torch
    cuda = torch.cuda.is_available()
    d = _tag(tidy_metadata(json.loads(nb.read_text())), cuda, True)
    nb.write_text(json.dumps(d, indent=1, ensure_ascii=False) + "\n")
    cmd = [_bin('jupyter'), 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
           f'--ExecutePreprocessor.timeout={timeout}', '--ExecutePreprocessor.kernel_name=python3', str(nb)]
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore::FutureWarning'}  # torch.jit deprecation noise from fastai imports
    r = subprocess.run(cmd, env=env)  # nbconvert runs the kernel in the notebook's folder, as nbdev-test does
    d = _drop_unused_widget_state(_tag(json.loads(nb.read_text()), cuda, False))
    nb.write_text(json.dumps(d, indent=1, ensure_ascii=False) + "\n")
    if r.returncode: sys.exit(f"execution of {nb} failed (outputs not saved)")
    subprocess.run([_bin('nbdev-clean'), '--fname', str(nb)], check=True)
    size = nb.stat().st_size / 1024
    print(f"executed {nb}: {size:.0f} KB" + ("  <- over 1.5 MB: downscale figures, trim outputs" if size > 1500 else ""))

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run'); r.add_argument('nb', nargs='+'); r.add_argument('--timeout', type=int, default=1200)
    f = sub.add_parser('from-py'); f.add_argument('src'); f.add_argument('dest')
    a = p.parse_args()
    if a.cmd == 'run':
        for nb in a.nb: run(nb, a.timeout)
    else: from_py(a.src, a.dest)
