"""Smoke tests of the bench suite: every script runs at its tiny size (BENCH_QUICK=1), exits 0 and prints a table.

`run_all.py --quick --gpu` runs each script once, in its own process (gpu.py at its CPU tiny size), so the file
costs one pass over the scripts; the other tests run in-process. Timings are never asserted.
"""
import json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / 'bench'
sys.path.insert(0, str(BENCH))
import run_all  # noqa: E402

SCRIPTS = [s for s in run_all.SCRIPTS if (BENCH / s).exists()]


def test_run_all_quick(tmp_path):
    """`run_all.py --quick --gpu` (every script once, at its tiny size, gpu.py on the CPU): exit 0; each script exited 0,
    reported at least one non-empty table through the harness and printed it; every headline found its number.
    One test, not one per script: under pytest-xdist a shared fixture would run the whole suite once per worker."""
    out = tmp_path / 'quick.md'
    env = {**os.environ, 'BENCH_QUICK': '1', 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
    p = subprocess.run([sys.executable, str(BENCH / 'run_all.py'), '--quick', '--gpu', '--out', str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    md, res = out.read_text(), json.loads(out.with_suffix('.json').read_text())
    assert res['quick'] is True and '## Headline ratios' in md and '| what | ratio | target | met | machine | date |' in md
    for s in SCRIPTS:
        r = res['scripts'][s]
        assert r['status'] == 'ok', f"{s}: {r['status']}\n" + log[-4000:]
        assert r['reports'] and all(rep['rows'] for rep in r['reports']), f"{s} reported no table"
        for rep in r['reports']:
            assert f"### {rep['title']}" in md and rep['machine'], f"{s}: table '{rep['title']}' missing from the markdown"
            assert "| " + " | ".join(rep['rows'][0]) + " |" in md, f"{s}: the header of '{rep['title']}' is missing"
            assert f"### {rep['title']}" in p.stdout, f"{s} did not print its table"
        heads = [h for h in res['headlines'] if h['script'] == s]
        assert heads, f"no headline row for {s}"
        assert all(isinstance(h['ratio'], float) for h in heads), f"{s}: headline without a number: {heads}"
    whats = [h['what'] for h in res['headlines']]
    assert len(whats) == len(set(whats))


def test_momentum_candidates_agree():
    "The three momentum updates give the same weights; one update moves xi to m*xi + (1-m)*theta."
    import torch, momentum
    from lodisc_nb.vit import vit_micro
    from lodisc_nb.model import LoDisc
    torch.manual_seed(0)
    model = LoDisc(vit_micro(), dim=16, mlp_dim=32)
    with torch.no_grad():
        for p in model.encoder.parameters(): p.add_(1.)
    momentum.check_same(model, m=0.9)
    online, mom = momentum.pairs(model)
    before = [q.clone() for q in mom]
    momentum.lerp_update(online, mom, 0.75)
    for q, b, p in zip(mom, before, online): torch.testing.assert_close(q, 0.75 * b + 0.25 * p)


def test_gpu_cpu_paths_and_compile_fallback(monkeypatch):
    "gpu.py at the tiny size with bf16 autocast and channels-last on the CPU; a failing torch.compile falls back to eager."
    import torch, gpu
    monkeypatch.setenv('BENCH_QUICK', '1')
    monkeypatch.delenv('BENCH_JSON', raising=False)
    def boom(model, mode=None, backend=None): raise RuntimeError("no compiler here")
    monkeypatch.setattr(gpu, 'compile_blocks', boom)
    rows = gpu.main(['--device', 'cpu', '--amp', 'bf16', '--channels-last', 'on', '--compile', 'on', '--reps', '1',
                     '--variants', 'MoCo v3', 'LoDisc drop', '--passes', 'batched', '--data', 'off'])
    assert [r['candidate'] for r in rows] == ['MoCo v3', 'LoDisc drop']   # compiled candidates dropped, eager kept
    assert all(r['images_per_s'] > 0 for r in rows) and rows[0]['vs_mocov3'] == 1
    a = gpu.parse(['--device', 'cpu'])
    assert (a.arch, a.img, a.dtype, a.setups, a.channels_last) == ('vit_micro', 32, None, [], False)
    assert gpu.parse(['--device', 'cpu', '--compile', 'model', 'step']).setups == ['model', 'step']
    assert gpu.amp_dtype('cpu', 'off') is None and gpu.amp_dtype('cpu', 'bf16') is torch.bfloat16


def test_gpu_compile_setups_trace(monkeypatch):
    "Every compile setup builds and steps (Dynamo's 'eager' backend: traced, not code-generated, so it runs in CI)."
    import gpu
    monkeypatch.setenv('BENCH_QUICK', '1')
    monkeypatch.delenv('BENCH_JSON', raising=False)
    rows = gpu.main(['--device', 'cpu', '--compile', 'model', 'step', '--compile-backend', 'eager', '--reps', '1',
                     '--variants', 'LoDisc drop', '--passes', 'batched', '--data', 'off'])
    assert [r['candidate'] for r in rows] == ['LoDisc drop', 'LoDisc drop compiled:model', 'LoDisc drop compiled:step']
    assert all(r['vs_eager'] > 0 for r in rows[1:])
    import torch._dynamo
    assert torch._dynamo.config.compiled_autograd is False   # the 'step' candidate switches it on only while it steps


def test_batched_step_is_the_per_view_step():
    """The bench's per-view baseline and the batched `LoDisc.forward`: same loss and gradients (float32, CPU; the model
    notebook checks 1e-6 absolute at its size, here 1e-6 of the largest gradient, which these narrow heads make ~8); three
    encoder calls instead of six (two instead of four for MoCo v3), fewer operators, and no host sync except the ViT's
    range check of the kept indices (token dropping)."""
    import copy, torch, gpu
    from lodisc_nb.vit import vit_micro
    from lodisc_nb.model import LoDisc, count_encoder_passes
    x1, x2 = torch.randn(2, 6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for name, kw in gpu.VARIANTS.items():
        torch.manual_seed(0)
        a = LoDisc(vit_micro(), dim=32, mlp_dim=64, **kw)
        b = gpu.PerViewLoDisc(vit_micro(), dim=32, mlp_dim=64, **kw); b.load_state_dict(a.state_dict())
        oa, ob = a(x1, x2), b(x1, x2)
        oa.loss.backward(); ob.loss.backward()
        torch.testing.assert_close(oa.loss, ob.loss, atol=1e-6, rtol=0)
        scale = max(1., max(p.grad.abs().max().item() for p in a.parameters() if p.requires_grad))
        for (n, p), q in zip(a.named_parameters(), b.parameters()):   # float32 rounding: 1e-6 of the largest gradient
            if p.requires_grad: torch.testing.assert_close(p.grad, q.grad, atol=1e-6 * scale, rtol=0, msg=f"{name}: {n}")
        if oa.keep1 is not None: assert torch.equal(oa.keep1, ob.keep1) and torch.equal(oa.keep2, ob.keep2)
        local = 'local_weight' not in kw
        assert count_encoder_passes(a, x1, x2) == {'online': 1, 'momentum': 2 if local else 1}
        assert count_encoder_passes(b, x1, x2) == {'online': 2, 'momentum': 4 if local else 2}
        with gpu.OpCounter() as ca: a(x1, x2).loss.backward()
        with gpu.OpCounter() as cb: b(x1, x2).loss.backward()
        assert ca.ops < cb.ops and ca.kernel_ops < cb.kernel_ops, (name, ca.ops, cb.ops, ca.kernel_ops, cb.kernel_ops)
        assert ca.syncs == (1 if kw.get('mask_mode') == 'drop' else 0), (name, ca.counts)


def test_gpu_flops_peak_and_jpeg_decode(tmp_path):
    "FLOPs counted with the CPU attention kernel included; the peak table; the batched decode + resize against PIL's."
    import torch, torch.nn.functional as F, gpu
    B, H, T, d = 2, 4, 10, 8
    q, k, v = (torch.randn(B, H, T, d, requires_grad=True) for _ in range(3))
    fl = gpu.count_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert fl == (2 + 5) * 2 * B * H * T * T * d    # forward: Q·Kᵀ and A·V; backward: the scores again + four products
    assert gpu.peak_for_name('NVIDIA H200') == 989. and gpu.peak_for_name('NVIDIA H100 PCIe') == 756.
    assert gpu.peak_for_name('NVIDIA H100 80GB HBM3') == 989. and gpu.peak_for_name('Tesla T4') is None
    assert gpu.peak_tflops('cpu') is None and gpu.peak_tflops('cpu', override=100) == 100.
    files = gpu.make_jpeg_folder(tmp_path / 'jpg', 4)
    from PIL import Image
    assert [Image.open(f).size for f in files] == [(375, 500), (500, 375), (500, 375), (500, 375)]
    from lodisc_nb.data import read_image
    raw = gpu.JpegBytes(files)
    dec = gpu.decode_resize([raw[i] for i in range(4)], 64, 'cpu')
    ref = torch.stack([read_image(f, 64)[0] for f in files])
    assert dec.shape == ref.shape == (4, 3, 64, 64) and dec.dtype == torch.uint8
    assert (dec.float() - ref.float()).abs().mean() < 6     # two resampling filters, one picture


def test_run_all_reports_a_crash(tmp_path, monkeypatch):
    "A script that crashes is reported (status, its traceback) and the scripts after it still run; exit code 1."
    (tmp_path / 'crash.py').write_text("raise SystemExit('boom: this script fails on purpose')\n")
    (tmp_path / 'good.py').write_text(
        "import json, os\n"
        "with open(os.environ['BENCH_JSON'], 'a') as f:\n"
        "    f.write(json.dumps(dict(title='Keep mask demo', machine='test machine', rows=[dict(candidate='vectorised', speedup=60.0)], notes='')) + '\\n')\n")
    monkeypatch.setattr(run_all, 'HERE', tmp_path)
    monkeypatch.setattr(run_all, 'SCRIPTS', {'crash.py': [], 'good.py': []})
    monkeypatch.setattr(run_all, '_TITLE', {'crash.py': '', 'good.py': 'Keep mask'})
    monkeypatch.setattr(run_all, 'HEADLINES', [
        ('crash.py', 'crash ratio', lambda R: run_all._pick(R, 'x', 'y'), '>= 1x', lambda v: v >= 1),
        ('good.py', 'mask ratio', lambda R: run_all._pick(R, 'Keep mask', 'speedup', candidate='vectorised'), '>= 50x', lambda v: v >= 50)])
    out = tmp_path / 'r.md'
    assert run_all.main(['--out', str(out)]) == 1
    res = json.loads(out.with_suffix('.json').read_text())
    assert res['scripts']['crash.py']['status'].startswith('failed') and res['scripts']['good.py']['status'] == 'ok'
    crash, good = res['headlines']
    assert crash['ratio'] == '—' and crash['met'].startswith('no number (failed')
    assert good['ratio'] == 60.0 and good['met'] == 'yes' and good['machine'] == 'test machine'
    assert 'boom: this script fails on purpose' in out.read_text()


def test_arch_cost_quick():
    "bench/arch.py at its tiny size: one row per encoder, vit_micro's ratio to itself exactly 1, ViT-Tiny's parameter count ~9.7x."
    import arch
    os.environ['BENCH_QUICK'] = '1'
    try: rows = arch.main(['--device', 'cpu'])
    finally: os.environ.pop('BENCH_QUICK')
    assert [r['arch'] for r in rows] == ['vit_micro', 'vit_tiny'] and rows[0]['vs_vit_micro'] == 1.0
    assert round(rows[0]['params_M'], 6) == 0.557184 and round(rows[1]['params_M'], 6) == 5.379264
