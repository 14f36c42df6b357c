"""The developer tools that read the notebooks: `tools/tutorial_grids.py` must find every tutorial grid.

It takes the runs from the tutorials' own cells (`RUNS`/`grid`, `runs`, `SWITCHES`/`jobs_for`), so a notebook edit
that renames or reshapes them would silently shrink the grid it fills; these tests catch that. No training here.
"""
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import tutorial_grids  # noqa: E402


def test_all_jobs(tmp_path):
    "24 runs of tutorial 2, 6 of tutorial 3, and tutorial 4's 16 of which 6 share tutorial 2's folders: 40 in all."
    jobs = tutorial_grids.all_jobs('cpu', tmp_path)
    assert len(jobs) == len({j['out'] for j in jobs}) == 40
    per_page = Counter(Path(j['out']).relative_to(tmp_path).parts[0] for j in jobs)
    assert per_page == {'tutorial02': 24, 'tutorial03': 6, 'tutorial04': 10}
    assert all(j['device'] == 'cpu' and j['epochs'] == 20 for j in jobs)
    first = jobs[0]                                   # the main question first: the supervised start, seed 0
    assert (first['pretrained'], first['seed'], first['method']) == ('supervised', 0, 'MoCo v3')
    assert Counter(j['method'] for j in jobs) == {'LoDisc': 31, 'MoCo v3': 9}


def test_test_every_epoch_is_cached(tmp_path):
    "Tutorial 4's section-6 run reads its JSON cache instead of training when the file exists."
    ns = tutorial_grids.notebook_defs('04_paper_vs_official_code.ipynb', 'def test_every_epoch')
    cache = tmp_path / 'rows.json'
    cache.write_text('[{"rank1": 0.5, "rank5": 0.9, "mAP": 0.3}]')
    assert ns['test_every_epoch'](cache=cache) == [{'rank1': 0.5, 'rank5': 0.9, 'mAP': 0.3}]


def _garment_until_long(tmp_path):
    """Tutorial 03a: the sweep (both methods, 4 crop scales, seed 0), the keep-ratio pair at the scale chosen on valid, then the grid,
    the all-images runs and seed 0 at 45 epochs; returns (the grid's jobs, the 45-epoch ones, the generator)."""
    phases = tutorial_grids.garment_phases('cpu', tmp_path)
    sweep = next(phases)
    assert [(j['method'], j['scale'], j['seed']) for j in sweep] == [(m, s, 0) for m in ('MoCo v3', 'LoDisc') for s in (0.5, 0.8, 0.2, 1.0)]
    assert all(j['classes'] == '0,2,4,6' and j['init_classes'] == '1,3,5,7,8,9' and j['device'] == 'cpu' for j in sweep)
    maps = [0.40, 0.40, 0.35, 0.37, 0.39, 0.41, 0.36, 0.38]   # MoCo v3 then LoDisc at 0.5 / 0.8 / 0.2 / 1: 0.8 has the best mean (0.405)
    second = phases.send({j['out']: {'valid_mAP': m} for j, m in zip(sweep, maps)})
    keep, moco = second[:2], second[2:]
    assert [(j['method'], j['scale'], j.get('keep_ratio', 0.3)) for j in keep] == [('LoDisc', 0.8, 0.3), ('LoDisc', 0.8, 0.5)]
    assert keep[0]['out'] == sweep[5]['out']             # the sweep's own run, read from its cache
    assert [(j['method'], j['pretrained'], j['scale'], j['seed']) for j in moco] == [      # the grid's MoCo v3 runs beside them
        ('MoCo v3', p, 0.8, s) for p in ('supervised', 'none') for s in (0, 1, 2)]
    rest = phases.send({j['out']: {'valid_mAP': m} for j, m in zip(second, [0.41, 0.45] + [0.4] * 6)})
    grid, full, long0 = moco + rest[:-4], rest[-4:-2], rest[-2:]
    assert [(j['method'], j['scale'], j.get('keep_ratio', 0.3), j['seed'], j['init_epochs']) for j in full] == [
        ('MoCo v3', 0.8, 0.3, 0, 60), ('LoDisc', 0.8, 0.5, 0, 60)]          # all the training images, a 60-epoch start
    assert all('max_train_per_class' not in j and Path(j['out']).parent.name == 'all-images' for j in full)
    assert all(j['max_train_per_class'] == 1000 for j in grid)
    assert len(grid) == 18 and {j['scale'] for j in grid} == {0.8}
    assert Counter((j['method'], j['pretrained'], j.get('keep_ratio', 0.3)) for j in grid) == {
        ('MoCo v3', 'supervised', 0.3): 3, ('LoDisc', 'supervised', 0.5): 9, ('MoCo v3', 'none', 0.3): 3, ('LoDisc', 'none', 0.5): 3}
    assert [(j['method'], j.get('keep_ratio', 0.3), j['seed'], j['epochs'], j['max_train_per_class']) for j in long0] == [
        ('MoCo v3', 0.3, 0, 45, 1000), ('LoDisc', 0.5, 0, 45, 1000)]    # seed 0 at 45 epochs, the grid's data and start
    return grid, long0, phases


def test_garment_phases(tmp_path):
    "Tutorial 03a's phases up to the 45-epoch runs (their checks are in `_garment_until_long`)."
    grid, long0, _ = _garment_until_long(tmp_path)
    assert len(grid) == 18 and len(long0) == 2


def _send_epoch_choice(tmp_path, maps15, maps45):
    "Tutorial 03a's last phase after seed 0's validation mAPs at 15 epochs (MoCo v3, LoDisc) and at 45."
    grid, long0, phases = _garment_until_long(tmp_path)
    seed0 = {j['out']: j for j in grid if j['seed'] == 0 and j['pretrained'] == 'supervised' and j.get('mask_source') is None and j.get('mask_mode') is None}
    m15 = dict(zip(('MoCo v3', 'LoDisc'), maps15))
    got = {out: {'valid_mAP': m15[j['method']]} for out, j in seed0.items()} | {j['out']: {'valid_mAP': m} for j, m in zip(long0, maps45)}
    got |= {j['out']: {'valid_mAP': 0.0} for j in grid if j['out'] not in got}
    return grid, long0, phases.send(got)


def test_garment_phases_epochs(tmp_path):
    "Tutorial 03a: 45 epochs win on the mean validation mAP (0.415 > 0.405): the last phase is three seeds of both methods and MoCo v3 on all images at 45."
    grid, long0, last = _send_epoch_choice(tmp_path, (0.40, 0.41), (0.42, 0.41))
    assert [(j['method'], j['seed'], j['epochs']) for j in last[:-1]] == [(m, s, 45) for m in ('MoCo v3', 'LoDisc') for s in (0, 1, 2)]
    assert [j['out'] for j in last[:-1] if j['seed'] == 0] == [j['out'] for j in long0]     # seed 0: read from its cache
    assert (last[-1]['method'], last[-1]['epochs'], 'max_train_per_class' in last[-1], Path(last[-1]['out']).name) == (
        'MoCo v3', 45, False, 'supervised-MoCov3-scale0.8-epochs45-s0')             # and MoCo v3 on all the images at 45 epochs


def test_garment_phases_keep_15_epochs(tmp_path):
    "Tutorial 03a: when 15 epochs win on valid, the last phase is the grid's and the all-images runs (read from the cache, nothing new)."
    grid, long0, last = _send_epoch_choice(tmp_path, (0.42, 0.41), (0.40, 0.41))
    outs = {j['out'] for j in grid}
    assert len(last) == 7 and all(j['out'] in outs and j['epochs'] == 15 for j in last[:-1])
    assert Path(last[-1]['out']).name == 'supervised-MoCov3-scale0.8-s0' and Path(last[-1]['out']).parent.name == 'all-images'  # the all-images run


def test_garment_command_reads_its_report(tmp_path, monkeypatch):
    "Tutorial 03a's plain command: with its metrics.json in the cache, its results are read (test metrics, seconds), nothing trains."
    import json
    out = tmp_path / 'tutorial03a' / 'command'; out.mkdir(parents=True)
    res = {'LoDisc': {'rank1': 0.7, 'mAP': 0.45}, 'MoCo v3': {'rank1': 0.69, 'mAP': 0.44}}
    secs = {'data and init': 5., 'LoDisc': 100., 'LoDisc evaluation': 20., 'MoCo v3': 80., 'MoCo v3 evaluation': 10.}
    (out / 'metrics.json').write_text(json.dumps(dict(results=res, seconds=secs)))
    monkeypatch.setenv('LODISC_CACHE', str(tmp_path))
    assert tutorial_grids.garment_command('cpu') == {'LoDisc rank1': 0.7, 'LoDisc mAP': 0.45, 'MoCo v3 rank1': 0.69, 'MoCo v3 mAP': 0.44}
    ns = tutorial_grids.garment_defs()
    assert ns['command_results'](out)['LoDisc']['seconds'] == 120. and ns['command_results'](out)['MoCo v3']['seconds'] == 90.
    assert ns['COMMAND'] == ['--data', 'fashion-mnist', '--classes', '0,2,4,6', '--init', 'supervised', '--init-classes', '1,3,5,7,8,9']


def test_pages(tmp_path):
    "--pages 03 gives tutorial 3's six runs only."
    jobs = tutorial_grids.all_jobs('cpu', tmp_path, pages=('03',))
    assert len(jobs) == 6 and {Path(j['out']).relative_to(tmp_path).parts[0] for j in jobs} == {'tutorial03'}
