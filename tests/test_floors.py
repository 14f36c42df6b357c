"""The notebook order is the dependency order: no module of `lodisc_nb` imports (at module level or inside a
function) a module exported by a later notebook, so there is no cycle either; and the test harness stays out of the
modules users import. Read from the code with `ast`, nothing is imported."""
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_MODULES = ['sets', 'augment', 'readers', 'data', 'vit', 'mask', 'ranks', 'losses', 'model', 'eval', 'callbacks', 'checkpoints', 'learner', 'distributed', 'monitors', 'viz', 'cli', 'apply']
HARNESS = ['run_ddp', 'ddp_step', 'ddp_fit_toy', 'ddp_contrastive_check', 'official_pixel_mask', 'write_image',
           '_write_image', 'run_one', 'run_grid']

def notebook_of_module():
    "module -> the notebook that exports it (its path relative to nbs/, which sorts in notebook order)."
    out = {}
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for cell in json.loads(nb.read_text())['cells']:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(cell['source']), re.M)
            if m: out.setdefault(m.group(1), nb.name)
    return out

def imports_of(path):
    "The lodisc_nb modules a file imports, anywhere in it."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: found |= {mod.split('.')[0]} if mod else {a.name for a in node.names}
            elif mod.startswith('lodisc_nb.'): found.add(mod.split('.')[1])
            elif mod == 'lodisc_nb': found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('lodisc_nb.')}
    return found

def test_every_import_points_down():
    order = notebook_of_module()
    mods = {p.stem: p for p in (ROOT / 'lodisc_nb').glob('*.py') if not p.stem.startswith('_')}
    assert set(mods) <= set(order), f"modules no notebook exports: {sorted(set(mods) - set(order))}"
    upward = [f"{m} ({order[m]}) imports {d} ({order[d]})" for m, p in sorted(mods.items())
              for d in sorted(imports_of(p)) if d in mods and d != m and order[d] > order[m]]
    assert not upward, "imports that run back up the notebook order:\n" + "\n".join(upward)

def test_harness_is_not_in_user_modules():
    defined = {}
    for m in USER_MODULES:
        tree = ast.parse((ROOT / 'lodisc_nb' / f'{m}.py').read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in HARNESS: defined.setdefault(node.name, m)
    assert not defined, f"test harness in modules users import (move it to lodisc_nb.testing / experiments): {defined}"

def test_the_checks_can_fail(tmp_path):
    "An upward import and a harness name are found when they are there."
    (tmp_path / 'a.py').write_text("def f():\n    from lodisc_nb.cli import main\nfrom .vit import ViT\n")
    assert imports_of(tmp_path / 'a.py') == {'cli', 'vit'}
