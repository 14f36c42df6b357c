"""The cost of the local branch: a LoDisc training step over a MoCo v3 step, for both mask modes.

ViT-tiny (embed 192, depth 12, heads 3) at the toy size (32 px), batch 64, on this machine's device.
A step = forward (online + momentum + local passes), backward, AdamW step, momentum update. MoCo v3 is the same
module with `local_weight=0` (the local branch is not computed at all). Also the peak memory of one step.
Target: LoDisc with token dropping at most 1.35x MoCo v3.

    python bench/step.py [--device cpu] [--patch 4] [--bs 64]
"""
import argparse, sys
from pathlib import Path

import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compare, ratio, report, peak_mem_mb, cuda_peak_mb, quick

from lodisc_nb.vit import create_vit
from lodisc_nb.model import LoDisc

VARIANTS = {'MoCo v3': dict(local_weight=0.), 'LoDisc drop': dict(mask_mode='drop'), 'LoDisc pixel': dict(mask_mode='pixel')}

def make_step(variant, arch, img, patch, bs, device, seed=0):
    "A closure running one full training step of `variant` on a fixed random batch."
    torch.manual_seed(seed)
    model = LoDisc(create_vit(arch, img_size=img, patch_size=patch), **VARIANTS[variant]).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x1, x2 = torch.randn(bs, 3, img, img, device=device), torch.randn(bs, 3, img, img, device=device)
    def step():
        out = model(x1, x2)
        opt.zero_grad(set_to_none=True); out.loss.backward(); opt.step()
        model.momentum_update(0.99)
    return step

def peak_mb(variant, arch, img, patch, bs, device):
    if torch.device(device).type == 'cuda':
        step = make_step(variant, arch, img, patch, bs, device); step()
        return cuda_peak_mb(step, device)
    setup = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
             f"from step import make_step\nstep = make_step({variant!r}, {arch!r}, {img}, {patch}, {bs}, 'cpu')")
    return peak_mem_mb("step()", setup=setup)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--arch', default='vit_tiny'); ap.add_argument('--img', type=int, default=32)
    ap.add_argument('--patch', type=int, default=4); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--reps', type=int, default=8)
    a = ap.parse_args(argv)
    if quick(): a.arch, a.bs, a.patch = 'vit_micro', 8, 8
    steps = {v: make_step(v, a.arch, a.img, a.patch, a.bs, a.device) for v in VARIANTS}
    st = compare(steps, warmup=2, reps=a.reps, device=a.device)
    rows = [dict(variant=v, ms_per_step=st[v]['median'] * 1e3, iqr_ms=f"{st[v]['lo']*1e3:.0f}-{st[v]['hi']*1e3:.0f}",
                 vs_mocov3=ratio(st, v, 'MoCo v3'),
                 # quick: one fresh-process measurement instead of three (each costs an import of torch)
                 peak_mb=peak_mb(v, a.arch, a.img, a.patch, a.bs, a.device) if not quick() or v == 'LoDisc drop' else float('nan'))
            for v in VARIANTS]
    n = (a.img // a.patch) ** 2
    report(f"Training step: LoDisc vs MoCo v3 ({a.arch}, {a.img} px, patch {a.patch} = {n} patches, batch {a.bs}, {a.device})",
           rows, device=a.device,
           notes="vs_mocov3 = median step time over MoCo v3's, measured interleaved in one run. peak_mb: CPU = growth of "
                 "peak RSS during one step in a fresh process (includes optimiser state); GPU = max allocated.")
    return rows

if __name__ == '__main__': main()
