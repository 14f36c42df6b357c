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
