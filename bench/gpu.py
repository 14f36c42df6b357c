"""Training throughput on one GPU: images/s of a LoDisc and a MoCo v3 step with ViT-S/16 at 224 px, and peak memory.

    python bench/gpu.py                          # on a GPU: vit_small, 224 px, patch 16, batch 128 (about 3 min)
    python bench/gpu.py --compile off --bs 256   # eager only, another batch size
    python bench/gpu.py --device cpu             # CPU: the tiny size (vit_micro, 32 px) unless --size full
    BENCH_QUICK=1 python bench/gpu.py            # the CI smoke test: tiny size, 2 timed steps

One step = LoDisc.forward on two normalised views (online, momentum and, for LoDisc, local passes), backward,
AdamW step, momentum update: exactly what `bench/step.py` times, at the GPU size. The batch is fixed random
data already on the device, so the numbers are the model's speed, not the data loader's. images/s = batch size
/ median step time (each image gives two views). The candidates run interleaved (bench/_harness.py `compare`).

Speed settings, each a flag, each on only where it is supported:
- `--amp auto`: bf16 autocast where the device supports bf16 (CUDA compute capability >= 8.0); float32 elsewhere
  (bf16 on a CPU without AMX is slower: ask for it with `--amp bf16`). bf16 needs no loss scaler.
- attention always goes through `F.scaled_dot_product_attention` (flash / memory-efficient kernels on a GPU);
  the class-token rows the mask needs are one extra (1 x T) product per block, not the T x T matrix.
- `--channels-last auto`: channels-last images and patch-embedding weights on CUDA (the patch embedding is the
  only convolution of a ViT, so expect a small effect either way; compare with `--channels-last off`); off on CPU.
- `--compile auto`: on CUDA, every transformer block is compiled with `torch.compile` (blocks have no
  data-dependent shapes, and the 12 blocks share one compiled graph) and timed *beside* the eager model, so the
  table shows whether compiling helps here. If compiling fails, the eager numbers are still reported.
  Skipped when the time budget (`--budget-s`) is half spent. Off on CPU (`--compile on` forces it).
Also on CUDA: TF32 matmuls for what stays in float32, fused AdamW.
"""
import argparse, contextlib, sys, time, traceback
from pathlib import Path

import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import compare, ratio, report, quick, sync

from lodisc_nb.vit import create_vit
from lodisc_nb.model import LoDisc

VARIANTS = {'MoCo v3': dict(local_weight=0.), 'LoDisc drop': dict(mask_mode='drop'), 'LoDisc pixel': dict(mask_mode='pixel')}
FULL = dict(arch='vit_small', img=224, patch=16, bs=128, reps=20)
TINY = dict(arch='vit_micro', img=32, patch=8, bs=16, reps=4)


def amp_dtype(device, amp='auto'):
    "The autocast dtype for `amp` on `device`, or None for float32."
    dev = torch.device(device)
    if amp == 'off': return None
    if amp == 'bf16':
        if dev.type == 'cuda' and not torch.cuda.is_bf16_supported():
            raise SystemExit(f"--amp bf16: this GPU ({torch.cuda.get_device_name(dev)}) has no bf16; use --amp off")
        return torch.bfloat16
    return torch.bfloat16 if dev.type == 'cuda' and torch.cuda.is_bf16_supported() else None


def autocast(device, dtype):
    "bf16 autocast on `device`, or nothing."
    if dtype is None: return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def compile_blocks(model, mode=None):
    "Compile each transformer block of both encoders in place (state-dict keys unchanged)."
    for enc in (model.encoder, model.momentum_encoder):
        for blk in enc.blocks: blk.compile(dynamic=False, mode=mode)
    return model


def static_mb(model, opt):
    "Memory held between steps by this model: weights, gradients, optimiser state."
    ts = [*model.parameters(), *model.buffers(), *(p.grad for p in model.parameters() if p.grad is not None)]
    ts += [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
    return sum(t.numel() * t.element_size() for t in ts) / 2**20


class Candidate:
    "One model + optimiser + fixed batch; `step()` runs one training step."
    def __init__(self, variant, a, device, compiled=False):
        self.variant, self.compiled, self.device = variant, compiled, torch.device(device)
        torch.manual_seed(0)
        self.model = LoDisc(create_vit(a.arch, img_size=a.img, patch_size=a.patch), **VARIANTS[variant]).to(device)
        fmt = torch.channels_last if a.channels_last else torch.contiguous_format
        if a.channels_last: self.model.to(memory_format=fmt)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=1e-4, fused=True if self.device.type == 'cuda' else None)
        g = torch.Generator(device='cpu').manual_seed(1)
        self.x1, self.x2 = (torch.randn(a.bs, 3, a.img, a.img, generator=g).to(device).contiguous(memory_format=fmt)
                            for _ in range(2))
        self.dtype = a.dtype
        if compiled: compile_blocks(self.model, a.compile_mode)

    def step(self):
        with autocast(self.device, self.dtype): out = self.model(self.x1, self.x2)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        self.opt.step()
        self.model.momentum_update(0.99)
        return out

    def peak_mb(self):
        "Peak memory of one step for this model alone: its static memory + what the step allocates on top (CUDA only)."
        if self.device.type != 'cuda': return float('nan')
        sync(self.device); base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.step(); sync(self.device)
        return static_mb(self.model, self.opt) + (torch.cuda.max_memory_allocated(self.device) - base) / 2**20


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--size', choices=('auto', 'full', 'tiny'), default='auto',
                    help='full = ViT-S/16 at 224 px, tiny = vit_micro at 32 px; auto: full on CUDA, tiny elsewhere or with BENCH_QUICK')
    ap.add_argument('--arch'); ap.add_argument('--img', type=int); ap.add_argument('--patch', type=int)
    ap.add_argument('--bs', type=int); ap.add_argument('--reps', type=int, help='timed steps per candidate')
    ap.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument('--amp', choices=('auto', 'bf16', 'off'), default='auto')
    ap.add_argument('--compile', choices=('auto', 'on', 'off'), default='auto')
    ap.add_argument('--compile-mode', default=None, help="torch.compile mode, e.g. 'max-autotune' (slow to compile)")
    ap.add_argument('--channels-last', choices=('auto', 'on', 'off'), default='auto')
    ap.add_argument('--budget-s', type=float, default=270., help='stop adding compiled candidates after half of this')
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    size = a.size if a.size != 'auto' else ('tiny' if quick() or dev.type != 'cuda' else 'full')
    for k, v in (FULL if size == 'full' else TINY).items():
        if getattr(a, k) is None: setattr(a, k, v)
    if quick(): a.reps = min(a.reps, 2)
    a.size, a.dtype = size, amp_dtype(dev, a.amp)
    a.use_compile = a.compile == 'on' or (a.compile == 'auto' and dev.type == 'cuda')
    a.channels_last = a.channels_last == 'on' or (a.channels_last == 'auto' and dev.type == 'cuda')
    return a


def main(argv=None):
    t0 = time.perf_counter()
    a = parse(argv)
    dev = torch.device(a.device)
    if dev.type == 'cuda': torch.set_float32_matmul_precision('high')
    cands, compile_s, notes = {}, {}, []
    for v in a.variants:
        cands[v] = Candidate(v, a, dev)
        cands[v].step()                                             # first step: allocator warm-up, AdamW state
    if a.use_compile:
        for v in a.variants:
            if time.perf_counter() - t0 > a.budget_s / 2:
                notes.append(f"{v}: not compiled (half of the {a.budget_s:.0f} s budget spent)"); continue
            try:
                c = Candidate(v, a, dev, compiled=True)
                t1 = time.perf_counter(); c.step(); c.step(); sync(dev)  # compiles (train, no-grad, local shapes)
                compile_s[v] = time.perf_counter() - t1
                cands[f"{v} compiled"] = c
            except Exception as e:                                 # compiling is an option: fall back to eager
                notes.append(f"{v}: torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:120]}); eager only")
                traceback.print_exc(limit=3)
    st = compare({k: c.step for k, c in cands.items()}, warmup=2, reps=a.reps, device=dev)
    rows = []
    for k, c in cands.items():
        base = 'MoCo v3 compiled' if c.compiled and 'MoCo v3 compiled' in st else 'MoCo v3'
        rows.append(dict(candidate=k, ms_per_step=st[k]['median'] * 1e3,
                         iqr_ms=f"{st[k]['lo'] * 1e3:.3g}-{st[k]['hi'] * 1e3:.3g}",
                         images_per_s=a.bs / st[k]['median'],
                         vs_mocov3=ratio(st, k, base) if base in st else float('nan'),
                         compile_speedup=ratio(st, c.variant, k) if c.compiled else float('nan'),
                         compile_s=compile_s.get(c.variant, float('nan')) if c.compiled else float('nan'),
                         peak_mb=c.peak_mb()))
    dtype = 'bf16 autocast' if a.dtype is not None else 'float32'
    report(f"GPU throughput: LoDisc vs MoCo v3 ({a.arch}, {a.img} px, patch {a.patch}, batch {a.bs}, {dtype}, "
           f"channels-last {'on' if a.channels_last else 'off'}, {dev.type})", rows, device=dev,
           notes="images/s = batch / median step time (two views per image); vs_mocov3 = step time over MoCo v3's in the "
                 "same mode (eager or compiled); compile_speedup = eager time / compiled time of the same variant; "
                 "compile_s = time of the first two compiled steps; peak_mb = static memory (weights, grads, AdamW state) "
                 "+ peak extra allocation during one step (CUDA only; nan on CPU). "
                 + ' '.join(notes) + f" Total run: {time.perf_counter() - t0:.0f} s.")
    return rows


if __name__ == '__main__': main()
