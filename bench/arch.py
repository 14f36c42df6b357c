"""What a larger encoder costs: a MoCo v3 training step of ViT-Tiny over one of `vit_micro`, same input.

The garments tutorial (03a) trains `vit_micro` (width 128, depth 4: 0.56 M parameters) at 32 px with 8-pixel patches
on two CPU cores; ViT-Tiny (width 192, depth 12: 5.4 M) is the next size. A step = `step.make_step('MoCo v3', ...)`:
online and momentum forward, backward, AdamW step, momentum update, on a fixed random batch; the two encoders are
timed interleaved in one run. `BENCH_QUICK=1`: batch 4, 1 rep, numbers meaningless.

    python bench/arch.py [--device cpu] [--bs 128] [--reps 6] [--threads N]
"""
import argparse, sys
from pathlib import Path

import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compare, ratio, report, quick
from step import make_step

from lodisc_nb.vit import create_vit

ARCHS = ('vit_micro', 'vit_tiny')

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--img', type=int, default=32); ap.add_argument('--patch', type=int, default=8)
    ap.add_argument('--bs', type=int, default=128); ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--threads', type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    if quick(): a.bs, a.reps = 4, 1
    steps = {arch: make_step('MoCo v3', arch, a.img, a.patch, a.bs, a.device) for arch in ARCHS}
    st = compare(steps, warmup=2, reps=a.reps, device=a.device)
    params = {arch: sum(p.numel() for p in create_vit(arch, img_size=a.img, patch_size=a.patch).parameters()) for arch in ARCHS}
    rows = [dict(arch=arch, params_M=params[arch] / 1e6, ms_per_step=st[arch]['median'] * 1e3,
                 iqr_ms=f"{st[arch]['lo']*1e3:.0f}-{st[arch]['hi']*1e3:.0f}", vs_vit_micro=ratio(st, arch, 'vit_micro'))
            for arch in ARCHS]
    report(f"Encoder size: a MoCo v3 training step ({a.img} px, patch {a.patch}, batch {a.bs}, {a.device})", rows, device=a.device,
           notes="vs_vit_micro = median step time over vit_micro's, measured interleaved in one run.")
    return rows

if __name__ == '__main__': main()
