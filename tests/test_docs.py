"The offline docs preview renders every notebook, and every notebook is in the sidebar."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import preview_docs as pd

def test_every_notebook_is_in_the_sidebar():
    listed = {p for _, p in pd.sidebar_entries()}
    nbs = {p.relative_to(pd.NBS).as_posix() for p in pd.NBS.rglob('*.ipynb')
           if not any(part.startswith(('_', '.')) for part in p.relative_to(pd.NBS).parts)}
    assert nbs - listed == set(), f"add these to nbs/sidebar.yml: {sorted(nbs - listed)}"
    assert listed - nbs == set(), f"nbs/sidebar.yml lists notebooks that do not exist: {sorted(listed - nbs)}"

def test_every_page_renders(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'preview_docs.py'), '--out', str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    nbs = [p for p in (ROOT / '_proc').rglob('*.ipynb')]
    assert nbs, "nbdev-proc-nbs produced no notebooks"
    for nb in nbs:
        page = tmp_path / nb.relative_to(ROOT / '_proc').with_suffix('.html')
        assert page.exists(), f"no page for {nb.name}"
        html = page.read_text()
        assert 'id="lodisc-nav"' in html and '<h1' in html, f"{page.name} has no sidebar or title"
