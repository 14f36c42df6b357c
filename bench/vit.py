"""ViT forward costs: class-token attention beside SDPA, the explicit full-matrix path, and token keeping.

    .venv/bin/python bench/vit.py [--device cpu|cuda] [--batch 64] [--reps 15] [--threads N]

ViT-Tiny (width 192, depth 12, 3 heads) on 32 px images, with patch 4 (64 patches) and patch 8 (16 patches),
forward under `torch.no_grad()` (how the momentum encoder runs). For each patch size, interleaved timings of:
plain forward; `return_cls_attn=True` (rows computed beside SDPA); `return_attn=True` (explicit T x T maps);
`keep=` 30% of the patches (int(0.3 N), different per sample). Ratios are median times over the plain forward
(target for the class-token rows: at most 1.15x). `BENCH_QUICK=1`: batch 4, 1 rep, numbers meaningless.
"""
import argparse, os, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import compare, ratio, report, quick
from lodisc_nb.vit import vit_tiny


def bench(patch_size, batch, device, reps, img_size=32, keep_ratio=0.3):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    m = vit_tiny(img_size=img_size, patch_size=patch_size).to(device).eval()
    x = torch.randn(batch, 3, img_size, img_size, generator=g).to(device)
    N = m.num_patches
    K = int(keep_ratio * N)
    keep = torch.rand(batch, N, generator=g).argsort(1)[:, :K].sort(1).values.to(device)  # K random patches per sample

    def run(**kw):
        def f():
            with torch.no_grad(): m(x, **kw)
        return f

    fns = {'plain': run(), 'cls_attn': run(return_cls_attn=True), 'full_maps': run(return_attn=True),
           'keep30': run(keep=keep)}
    st = compare(fns, warmup=3, reps=reps, device=device)
    return dict(patch=patch_size, N=N, kept=K, batch=batch,
                plain_ms=st['plain']['median'] * 1e3,
                cls_attn_over_plain=ratio(st, 'cls_attn', 'plain'),
                full_maps_over_plain=ratio(st, 'full_maps', 'plain'),
                cls_attn_over_full_maps=ratio(st, 'cls_attn', 'full_maps'),
                keep30_over_plain=ratio(st, 'keep30', 'plain'))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--reps', type=int, default=15)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice)')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    batch, patches = (4, (8,)) if quick() else (a.batch, (4, 8))
    rows = [bench(ps, batch, a.device, a.reps) for ps in patches]
    report("ViT-Tiny forward, 32 px: class-token attention, full maps, 30% of tokens kept (no_grad)", rows, device=a.device,
           notes="Ratios are median over median (interleaved runs). cls_attn: rows softmax(q_cls K^T/sqrt(d)) computed beside "
                 "SDPA (target <= 1.15x plain); full_maps: explicit T x T attention (return_attn=True); keep30: int(0.3 N) patches "
                 "kept per sample.")


if __name__ == '__main__':
    main()
