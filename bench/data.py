"""The data path against the training step it feeds: is augmentation ever the bottleneck?

    .venv/bin/python bench/data.py [--device cpu|cuda] [--batch 128] [--reps 10] [--threads N]

For the toy set (32 px, and 64 px), interleaved timings of
- `data`: one training batch of the data path as `ssl_dls` + the training callback run it: the next uint8 batch
  from `dls.train` (a tensor index) and the two augmented views (`TwoViews.views`: resized crop + flip, colour
  jitter, grayscale, blur, solarize, normalise), all on the device;
- `views`: the two views alone;
- `step`: one ViT-Tiny training step (width 192, depth 12, 3 heads, patch 8 at 32 px / 16 at 64 px:
  16 patches either way) on the same batch size: forward + backward + AdamW on ONE view. The real MoCo v3 /
  LoDisc step also runs the second view and the momentum encoder, so the true margin is larger.

Reports images/s of each and `data_over_step` (data time / step time; target <= 1/3, i.e. the data path at
least 3x faster than the step). `BENCH_QUICK=1`: batch 8, a 2-block ViT, 2 reps; the numbers mean nothing.
"""
import argparse, sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import compare, ratio, report, quick
from lodisc_nb.data import toy_fgvc, ssl_dls


def make_vit(img_size, patch_size, depth):
    "ViT-Tiny from lodisc_nb.vit when it exists, else timm's VisionTransformer with the same configuration."
    try:
        from lodisc_nb.vit import vit_tiny
        return vit_tiny(img_size=img_size, patch_size=patch_size, depth=depth), 'lodisc_nb.vit.vit_tiny'
    except ImportError:
        from timm.models.vision_transformer import VisionTransformer
        return VisionTransformer(img_size=img_size, patch_size=patch_size, embed_dim=192, depth=depth, num_heads=3,
                                 num_classes=0), 'timm VisionTransformer'


def bench(size, batch, device, reps, depth):
    ds = toy_fgvc(n_per_class=max(2 * batch // 10 + 10, 40), size=size, seed=0)
    dls = ssl_dls(ds, bs=batch, device=device, seed=0)
    views = dls.views
    it = [iter(dls.train)]
    def next_batch():
        try: return next(it[0])
        except StopIteration:
            it[0] = iter(dls.train); return next(it[0])
    xb, _ = next_batch()

    def data():
        x, _ = next_batch()
        views.views(x)

    def views_only(): views.views(xb)

    vit, which = make_vit(size, size // 4, depth)
    vit = vit.to(device).train()
    head = torch.nn.Linear(192, 256).to(device)
    opt = torch.optim.AdamW(list(vit.parameters()) + list(head.parameters()), lr=1e-4)
    v1, _ = views.views(xb)
    target = torch.randn(batch, 256, device=device)

    def step():
        loss = F.mse_loss(head(vit(v1)), target)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

    st = compare({'data': data, 'views': views_only, 'step': step}, warmup=2, reps=reps, device=device)
    ips = lambda k: batch / st[k]['median']
    return dict(size=size, batch=batch, patch=size // 4, data_over_step=ratio(st, 'data', 'step'),
                step_over_data=ratio(st, 'step', 'data'), data_img_s=ips('data'), views_img_s=ips('views'),
                step_img_s=ips('step'), data_ms=st['data']['median'] * 1e3, step_ms=st['step']['median'] * 1e3,
                vit=which + (f' (depth {depth})' if depth != 12 else ''))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--reps', type=int, default=10)
    p.add_argument('--threads', type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    q = quick()
    batch, depth, sizes = (8, 2, [32]) if q else (a.batch, 12, [32, 64])
    rows = [bench(s, batch, a.device, a.reps, depth) for s in sizes]
    report('Data path (two views on the device) vs a ViT-Tiny training step', rows, device=a.device,
           notes="data = next uint8 batch from ssl_dls + TwoViews.views (both views); step = forward+backward+AdamW of "
                 "ViT-Tiny on one view of the same batch. data_over_step <= 0.33 means the data path is >= 3x faster."
                 + (" BENCH_QUICK: tiny sizes, numbers mean nothing." if q else ""))


if __name__ == '__main__':
    main()
