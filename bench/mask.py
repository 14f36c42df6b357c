"""Building the keep mask and its pixel mask: the official code's Python loops against `lodisc_nb.mask`.

    .venv/bin/python bench/mask.py            # batch 64, 14 x 14 patches of 16 px (the official setting)
    BENCH_QUICK=1 .venv/bin/python bench/mask.py   # tiny smoke run

Both start from the same fused scores (B, 196) and return the (B, 224, 224) pixel mask of the 30% most
pivotal patches. Target: the vectorised path at least 50x faster. A second table times masking the
normalised images themselves (`mask_pixels` against the official multiply by a 3-channel float mask).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from _harness import compare, ratio, report, quick
from lodisc_nb.mask import select_patches, keep_pixels, mask_pixels
from lodisc_nb.testing import official_pixel_mask

def main():
    B, g, p = (4, 14, 16) if quick() else (64, 14, 16)
    device = 'cuda' if torch.cuda.is_available() and not quick() else 'cpu'
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(B, g * g, generator=gen)
    x = torch.randn(B, 3, g * p, g * p, generator=gen)
    sd, xd = scores.to(device), x.to(device)

    assert torch.equal(official_pixel_mask(scores, p).bool(), keep_pixels(select_patches(scores), g * p, p)[:, 0])
    fns = {'official loops': lambda: official_pixel_mask(scores, p),            # the official code runs them on the CPU
           f'vectorised ({device})': lambda: keep_pixels(select_patches(sd), g * p, p)}
    st = compare(fns, warmup=1, reps=5 if quick() else 7, device=device)
    fast = f'vectorised ({device})'
    rows = [dict(candidate=k, batch=B, grid=f"{g}x{g}", patch=p, median_ms=v['median'] * 1e3,
                 iqr_ms=f"{v['lo'] * 1e3:.3g}-{v['hi'] * 1e3:.3g}", speedup=ratio(st, 'official loops', k))
            for k, v in st.items()]
    report(f"Keep mask + pixel mask, batch {B}, {g}x{g} patches of {p} px, {torch.get_num_threads()} torch thread(s)",
           rows, device=device,
           notes=f"speed-up of the vectorised path: {ratio(st, 'official loops', fast):.0f}x (target: at least 50x)")

    def official_apply():                     # loops, then the official multiply by a mask repeated over 3 channels
        m = official_pixel_mask(scores, p).to(device)[:, None].repeat(1, 3, 1, 1)
        return xd * m
    fns = {'official loops + multiply': official_apply,
           'select_patches + mask_pixels': lambda: mask_pixels(xd, select_patches(sd), p)}
    st = compare(fns, warmup=1, reps=5 if quick() else 7, device=device)
    rows = [dict(candidate=k, median_ms=v['median'] * 1e3, speedup=ratio(st, 'official loops + multiply', k))
            for k, v in st.items()]
    report(f"Masking the normalised views (B, 3, {g * p}, {g * p})", rows, device=device)

if __name__ == '__main__': main()
