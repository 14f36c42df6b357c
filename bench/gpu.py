"""A training step at the speed of the hardware: one run that measures everything issue 19 asks for.

    python bench/gpu.py                                  # on a GPU: ViT-S/16, 224 px, batch 128, bf16 (< 5 min on an H200)
    python bench/gpu.py --profile --out bench/results/gpu_h200.md   # the same + per-op profiles, written to a dated file
    python bench/gpu.py --compile off --data off         # eager steps only
    python bench/gpu.py --device cpu                     # CPU: the tiny size (vit_micro, 32 px) unless --size full
    BENCH_QUICK=1 python bench/gpu.py                    # the CI smoke test: tiny size, 2 timed steps

What it reports (each section is one table; ratios are medians over medians measured interleaved, `_harness.compare`):

1. **Training step** (`GPU throughput`): LoDisc (token dropping, pixel masking) and MoCo v3, each with the batched
   `LoDisc.forward` (both views in one encoder call) and with the per-view step it replaced (`PerViewLoDisc` below:
   six encoder calls on B images), eager and under every `torch.compile` setup in `--compile`. One step = forward,
   backward, AdamW, momentum update, on fixed random views already on the device (the model's speed, not the
   loader's). Columns: images/s, step time over MoCo v3's in the same mode (`vs_mocov3`), over the same variant's
   eager time (`vs_eager`: < 1 means compiling pays), batched over per-view (`vs_per_view`), FLOPs per step counted
   from the model (`torch.utils.flop_counter.FlopCounterMode`, forward + backward, 2 FLOPs per multiply-add), MFU
   (achieved FLOP/s over the device's dense bf16 peak, `PEAK_BF16_TFLOPS`), peak memory, and per forward + backward
   the ATen operators that do device work (`kernel_ops`, a CPU-side proxy for kernel launches) and the host
   synchronisations (`.item()`, `nonzero`...: each one waits for the GPU to finish everything queued).
2. **Compile setups** (`--compile`, CUDA default `auto` = all of them, CPU default off): 'blocks' (every transformer
   block compiled), 'model' (`LoDisc.forward` compiled: encoders, heads, mask and loss in one graph, broken where
   the model syncs), 'model-fullgraph' (the same, failing instead of breaking), 'model-max-autotune' (Triton GEMM
   autotuning, no CUDA graphs), 'model-cudagraphs' (`mode='reduce-overhead'`: CUDA graphs, shapes are fixed) and
   'step' (forward + backward + AdamW + momentum update in one compiled function, with compiled autograd). A setup
   that fails is reported in the notes; the eager numbers still stand. New setups start only while less than
   `--budget-s` has passed.
3. **JPEG data path** (`--data`): a temporary folder of `--n-jpeg` JPEGs of 500 x 375 px (CUB's typical size) read at
   the training size and turned into two views on the device, in images/s, against the step's images/s: (a) the
   library's streaming reader, `image_folder(stream=True)` + `ssl_dls`, whose fastai loader workers decode with PIL
   (`--workers`, default: all cores but two), (b) the files' bytes read by workers and decoded on the device in batches
   (`torchvision.io.decode_jpeg(list, device=...)`), then resized in one `roi_align`, (c) the in-memory path the
   library uses for sets that fit in RAM (uint8 tensor -> two views), and (d) the streaming loader feeding the
   LoDisc (pixel) step, which should come close to the step alone.
4. **Profile** (`--profile`): torch.profiler over a few steps of MoCo v3 and LoDisc, device time (CPU time on a
   CPU) per operator side by side, the operators LoDisc adds, and how busy the device was.

`--out FILE` also writes every table (dated, with the machine and the command) to a markdown file, rewritten after
each section, so a run that is cut short keeps what it measured. `bench/gpu_session.sh` is the one command a GPU
session runs.
"""
import argparse, collections, contextlib, os, sys, tempfile, time, traceback
from datetime import datetime
from pathlib import Path

import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import compare, report, quick, sync, machine

from lodisc_nb.vit import create_vit
from lodisc_nb.model import LoDisc, LoDiscOutput
from lodisc_nb.losses import lodisc_loss

VARIANTS = {'MoCo v3': dict(local_weight=0.), 'LoDisc drop': dict(mask_mode='drop'), 'LoDisc pixel': dict(mask_mode='pixel')}
SETUPS = ('model', 'model-cudagraphs', 'blocks', 'model-max-autotune', 'model-fullgraph', 'step')  # priority order
FULL = dict(arch='vit_small', img=224, patch=16, bs=128, reps=20, n_jpeg=4096)   # 32 batches: 2+ per loader worker
TINY = dict(arch='vit_micro', img=32, patch=8, bs=16, reps=4, n_jpeg=48)

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets. Matched against
# torch.cuda.get_device_name in this order (first match wins); --peak-tflops overrides.
PEAK_BF16_TFLOPS = [('H200', 989.), ('H100 PCIe', 756.), ('H100 NVL', 835.), ('H100', 989.), ('H800', 989.),
                    ('GH200', 989.), ('B200', 2250.), ('A100', 312.), ('A800', 312.), ('L40S', 362.), ('L4', 121.),
                    ('A10G', 70.), ('A10', 125.)]


def peak_for_name(name:str):
    "Dense bf16 peak (TFLOP/s) of the GPU called `name` (as torch.cuda.get_device_name says it), or None."
    return next((v for k, v in PEAK_BF16_TFLOPS if k in name), None)


def peak_tflops(device, override=None):
    "The device's dense bf16 peak in TFLOP/s (None on a CPU or an unknown GPU)."
    if override: return float(override)
    dev = torch.device(device)
    return peak_for_name(torch.cuda.get_device_name(dev)) if dev.type == 'cuda' else None


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


class PerViewLoDisc(LoDisc):
    "The step as MoCo v3 writes it, every encoder call on one view (six calls on B images): the baseline of the batched forward."
    def forward(self, x1, x2, boxes1=None, boxes2=None):
        q1, q2 = self.query(x1), self.query(x2)
        (k1, s1), (k2, s2) = self.momentum_keys(x1), self.momentum_keys(x2)
        keep1 = keep2 = k1m = k2m = None
        if self.has_local:
            keep1, keep2 = self.pick_patches(s1, x1, boxes1), self.pick_patches(s2, x2, boxes2)
            k1m, k2m = self.local_keys(x1, keep1), self.local_keys(x2, keep2)
        return LoDiscOutput(*lodisc_loss(q1, q2, k1, k2, k1m, k2m, tau=self.tau, local_weight=self.local_weight), keep1, keep2)


def compile_blocks(model, mode=None, backend='inductor'):
    "Compile each transformer block of both encoders in place (state-dict keys unchanged)."
    for enc in (model.encoder, model.momentum_encoder):
        for blk in enc.blocks: blk.compile(dynamic=False, mode=mode, backend=backend)
    return model


def apply_setup(cand, setup, backend='inductor'):
    "Compile candidate `cand` the way `setup` names (see the module docstring)."
    import torch._dynamo
    cfg = torch._dynamo.config       # many compiled copies of the same forward live side by side here: no silent eager fallback
    for k in ('cache_size_limit', 'recompile_limit', 'accumulated_cache_size_limit', 'accumulated_recompile_limit'):
        if hasattr(cfg, k): setattr(cfg, k, max(getattr(cfg, k), 512))
    m = cand.model
    if setup == 'blocks': compile_blocks(m, backend=backend)
    elif setup == 'model': m.compile(dynamic=False, backend=backend)
    elif setup == 'model-fullgraph': m.compile(dynamic=False, fullgraph=True, backend=backend)
    elif setup == 'model-max-autotune': m.compile(dynamic=False, mode='max-autotune-no-cudagraphs', backend=backend)
    elif setup == 'model-cudagraphs':
        m.compile(dynamic=False, mode='reduce-overhead', backend=backend); cand.mark_step = True
    elif setup == 'step':                                  # forward, backward (compiled autograd), AdamW, momentum update
        compiled = torch.compile(cand._step, dynamic=False, backend=backend)
        def step():
            with cfg.patch(compiled_autograd=True): return compiled()   # only while this candidate steps
        cand._step = step
    else: raise ValueError(f"unknown compile setup {setup!r}; choose from {SETUPS}")


def static_mb(model, opt):
    "Memory held between steps by this model: weights, gradients, optimiser state."
    ts = [*model.parameters(), *model.buffers(), *(p.grad for p in model.parameters() if p.grad is not None)]
    ts += [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
    return sum(t.numel() * t.element_size() for t in ts) / 2**20


class Candidate:
    "One model + optimiser + fixed batch; `step()` runs one training step."
    def __init__(self, variant, a, device, passes='batched', setup=None):
        self.variant, self.passes, self.setup, self.device = variant, passes, setup, torch.device(device)
        self.name = variant + ('' if passes == 'batched' else ' per-view') + (f' compiled:{setup}' if setup else '')
        torch.manual_seed(0)
        cls = LoDisc if passes == 'batched' else PerViewLoDisc
        self.model = cls(create_vit(a.arch, img_size=a.img, patch_size=a.patch), **VARIANTS[variant]).to(device)
        fmt = torch.channels_last if a.channels_last else torch.contiguous_format
        if a.channels_last: self.model.to(memory_format=fmt)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=1e-4, fused=True if self.device.type == 'cuda' else None)
        g = torch.Generator(device='cpu').manual_seed(1)
        self.x1, self.x2 = (torch.randn(a.bs, 3, a.img, a.img, generator=g).to(device).contiguous(memory_format=fmt)
                            for _ in range(2))
        self.dtype, self.mark_step, self.compile_s = a.dtype, False, float('nan')
        if setup: apply_setup(self, setup, a.compile_backend)

    def forward_backward(self):
        "The model's share of a step: forward and backward (what `OpCounter` counts)."
        with autocast(self.device, self.dtype): out = self.model(self.x1, self.x2)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        return out

    def _step(self):
        out = self.forward_backward()
        self.opt.step()
        self.model.momentum_update(0.99)
        return out.loss.detach()

    def step(self):
        if self.mark_step: torch.compiler.cudagraph_mark_step_begin()
        return self._step()

    def peak_mb(self):
        "Peak memory of one step for this model alone: its static memory + what the step allocates on top (CUDA only)."
        if self.device.type != 'cuda': return float('nan')
        sync(self.device); base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.step(); sync(self.device)
        return static_mb(self.model, self.opt) + (torch.cuda.max_memory_allocated(self.device) - base) / 2**20


class OpCounter(contextlib.ContextDecorator):
    "Count the ATen operators dispatched and the host synchronisations among them (CPU or GPU alike)."
    SYNCS = ('aten._local_scalar_dense', 'aten.nonzero', 'aten.masked_select', 'aten.is_nonzero', 'aten.equal')
    VIEWS = {f'aten.{n}' for n in ('view', '_unsafe_view', 't', 'transpose', 'permute', 'expand', 'slice', 'select', 'unbind',
                                   'split', 'split_with_sizes', 'chunk', 'squeeze', 'unsqueeze', 'detach', 'alias', 'as_strided',
                                   'reshape', 'view_as', 'unflatten', 'flatten', 'empty', 'empty_like', 'empty_strided')}
    def __enter__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        counts = self.counts = collections.Counter()
        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                counts[str(func.overloadpacket)] += 1
                return func(*args, **(kwargs or {}))
        self.mode = Mode(); self.mode.__enter__(); return self
    def __exit__(self, *exc): self.mode.__exit__(*exc)
    @property
    def ops(self): return sum(self.counts.values())
    @property
    def kernel_ops(self):
        "Operators that do work on the device (views, metadata and allocations left out): a proxy for kernel launches."
        return sum(v for k, v in self.counts.items() if k not in self.VIEWS)
    @property
    def syncs(self): return sum(self.counts[k] for k in self.SYNCS)


def count_flops(fn):
    "FLOPs of `fn()` (forward + backward) counted by `FlopCounterMode`, plus the CPU attention kernels it does not know."
    from torch.utils import flop_counter as fc
    extra = {}
    aten = torch.ops.aten
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):   # the CPU fused attention: same FLOPs as the GPU one
        extra[aten._scaled_dot_product_flash_attention_for_cpu] = lambda q, k, v, *a, out_shape=None, **kw: fc.sdpa_flop_count(q, k, v)
        extra[aten._scaled_dot_product_flash_attention_for_cpu_backward] = \
            lambda g, q, k, v, *a, out_shape=None, **kw: fc.sdpa_backward_flop_count(g, q, k, v)
    with fc.FlopCounterMode(display=False, custom_mapping=extra) as counter: fn()
    return counter.get_total_flops()


# ----------------------------------------------------------------------------------------------- the JPEG data path
def make_jpeg_folder(root, n, size=(500, 375), seed=0, quality=90, threads=8):
    "Write `n` JPEGs of `size` (w, h; every fourth one in portrait), smooth random colours plus texture, into the folder `root`."
    from concurrent.futures import ThreadPoolExecutor
    from PIL import Image
    import numpy as np
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    def one(i):
        rng = np.random.default_rng(seed + i)
        w, h = size if i % 4 else size[::-1]
        base = Image.fromarray(rng.integers(0, 256, (h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        img = np.clip(np.asarray(base, dtype=np.int16) + rng.integers(-12, 13, (h, w, 1), dtype=np.int16), 0, 255).astype(np.uint8)
        f = root / f"{i:05d}.jpg"; Image.fromarray(img).save(f, quality=quality)
        return f
    with ThreadPoolExecutor(threads) as ex: return list(ex.map(one, range(n)))


class JpegBytes(torch.utils.data.Dataset):
    "Files -> their bytes as a uint8 tensor (for decoding on the device)."
    def __init__(self, files): self.files = list(files)
    def __len__(self): return len(self.files)
    def __getitem__(self, i):
        import numpy as np
        return torch.from_numpy(np.fromfile(self.files[i], dtype=np.uint8))


def decode_resize(data, size, device):
    "A list of JPEG byte tensors -> uint8 (B, 3, size, size) on `device`: one batched decode, one padding, one `roi_align`."
    import warnings
    from torchvision.io import decode_jpeg, ImageReadMode
    from torchvision.ops import roi_align
    imgs = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    hw = torch.tensor([im.shape[-2:] for im in imgs], dtype=torch.float32)          # (B, 2) sizes: host metadata, no sync
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')                                         # "nested tensors are a prototype"
            pad = torch.nested.nested_tensor(imgs).to_padded_tensor(0)               # uint8 (B, 3, Hmax, Wmax), one op
    except (RuntimeError, NotImplementedError):                                     # a build without it: one copy per image
        H, W = (int(v) for v in hw.max(0).values)
        pad = imgs[0].new_zeros(len(imgs), 3, H, W)
        for i, im in enumerate(imgs): pad[i, :, :im.shape[-2], :im.shape[-1]] = im
    boxes = torch.cat([torch.arange(len(imgs), dtype=torch.float32)[:, None], torch.zeros(len(imgs), 2), hw.flip(1)], 1)
    out = roi_align(pad.float(), boxes.to(pad.device), (size, size), spatial_scale=1., sampling_ratio=2, aligned=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)                             # 2 x 2 samples per output pixel: antialiased


def data_path(a, dev, feed=None):
    """images/s of the JPEG data path (read + decode + resize + two views on the device), each way alone; and, when `feed`
    (a Candidate) is given, the training step fed by the loader workers. Returns (rows, notes); ratios are added later."""
    import warnings
    from fastai.data.load import DataLoader
    from lodisc_nb.data import TwoViews, ssl_dls, image_folder
    views = TwoViews(a.img)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        files = make_jpeg_folder(tmp, a.n_jpeg)
        notes.append(f"{a.n_jpeg} JPEGs of 500x375 (a quarter 375x500), quality 90, "
                     f"{sum(f.stat().st_size for f in files) / len(files) / 1024:.0f} KB each on average, written in "
                     f"{time.perf_counter() - t0:.0f} s; they sit in the page cache, so this measures decoding, not the disk. "
                     "Each path runs one untimed epoch (workers start, decoders initialise), then two timed epochs.")
        bs, pin, W = min(a.bs, len(files) // 2), dev.type == 'cuda', a.workers
        nb = len(files) // bs
        root = Path(tmp) / 'set'                                    # the library's streaming reader wants root/{train,test}/<class>/
        for sp, fs in (('train', files), ('test', files[:2])):
            (root / sp / 'bird').mkdir(parents=True)
            for f in fs: (root / sp / 'bird' / f.name).symlink_to(f)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')                         # 'the valid split is empty': only train is read here
            dls = ssl_dls(image_folder(root, size=a.img, valid_pct=0., stream=True), bs=bs, device=dev, num_workers=W)

        def run(batches, fn, epochs=2):
            "images/s of `fn` over every batch of `batches` (re-iterable), after one untimed epoch."
            for b in batches: fn(b)
            sync(dev); t0 = time.perf_counter()
            for _ in range(epochs):
                for b in batches: fn(b)
            sync(dev)
            return epochs * nb * bs / (time.perf_counter() - t0)

        def two_views(x): return views.views(x.to(dev, non_blocking=True))
        kw = dict(bs=bs, drop_last=True, shuffle=True, persistent_workers=W > 0)
        raw = DataLoader(JpegBytes(files), num_workers=min(W, 4), create_batch=list, **kw)
        mem = torch.randint(0, 256, (nb * bs, 3, a.img, a.img), dtype=torch.uint8)
        mem = list((mem.pin_memory() if pin else mem).split(bs))
        cands = {f'image_folder(stream=True): PIL in {W} fastai loader workers': lambda: run(dls.train, lambda b: views.views(b[0])),
                 f'decode_jpeg on {dev.type}, in batches (bytes read by {min(W, 4)} workers)':
                     lambda: run(raw, lambda b: views.views(decode_resize(b, a.img, dev))),
                 'in memory (uint8 tensor, no decoding)': lambda: run(mem, two_views)}
        if feed is not None:
            def fed(x):
                v1, v2 = views.views(x); feed.x1.copy_(v1); feed.x2.copy_(v2); feed.step()
            cands[f'the streaming loader feeding the {feed.name} step'] = lambda: run(dls.train, lambda b: fed(b[0]), epochs=1)
        for name, fn in cands.items():
            try: rows.append(dict(path=name, images_per_s=fn()))
            except Exception as e:
                notes.append(f"{name}: failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''})")
                traceback.print_exc(limit=4)
        del dls, raw
    return rows, notes


# ----------------------------------------------------------------------------------------------- the profile
def _dev_time(e, cuda):
    "Self time of a profiler average on the device (CUDA) or the CPU, in microseconds."
    if not cuda: return e.self_cpu_time_total
    return getattr(e, 'self_device_time_total', None) or getattr(e, 'self_cuda_time_total', 0.)


def profile_steps(cands, dev, steps=3, top=25):
    "Per-operator self time per step for each candidate (device time on CUDA), side by side; markdown lines."
    from torch.profiler import profile, ProfilerActivity
    cuda = dev.type == 'cuda'
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    per, busy, lines = {}, {}, []
    for name, c in cands.items():
        c.step(); sync(dev)
        t0 = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(steps): c.step()
            sync(dev)
        wall = (time.perf_counter() - t0) / steps * 1e6
        ka = prof.key_averages()
        per[name] = {e.key: _dev_time(e, cuda) / steps for e in ka}
        if cuda:   # kernels only (no aten:: rows, whose device time is their kernels'): how much of the step the GPU worked
            busy[name] = sum(v for k, v in per[name].items() if not k.startswith(('aten::', 'cuda', 'Optimizer', 'autograd', '##'))) / wall
        lines += [f"#### {name}: top operators by self {'device' if cuda else 'CPU'} time ({steps} steps)", "", "```",
                  ka.table(sort_by='self_device_time_total' if cuda else 'self_cpu_time_total', row_limit=top), "```", ""]
    names = list(cands)
    base, others = names[0], names[1:]
    keys = sorted({k for n in names for k in per[n] if k.startswith('aten::')},
                  key=lambda k: -max(per[n].get(k, 0.) for n in names))[:top]
    ms = lambda n, k: per[n].get(k, 0.) / 1e3
    lines += [f"#### ATen operators side by side (self {'device' if cuda else 'CPU'} ms per step; the last columns: what LoDisc adds)", "",
              "| op | " + " | ".join(names) + " | " + " | ".join(f"{n} - {base}" for n in others) + " |",
              "|---|" + "---|" * (len(names) + len(others))]
    lines += [f"| `{k}` | " + " | ".join(f"{ms(n, k):.3f}" for n in names) + " | "
              + " | ".join(f"{ms(n, k) - ms(base, k):+.3f}" for n in others) + " |" for k in keys]
    lines += ["| **all ops** | " + " | ".join(f"**{sum(v for k, v in per[n].items() if k.startswith('aten::')) / 1e3:.2f}**" for n in names)
              + " | " + " | ".join("" for _ in others) + " |"]
    if busy: lines += ["", "Device busy (kernel time / wall time per step): "
                       + ", ".join(f"{n} {100 * b:.0f}%" for n, b in busy.items()), ""]
    return lines


# ----------------------------------------------------------------------------------------------- main
def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--size', choices=('auto', 'full', 'tiny'), default='auto',
                    help='full = ViT-S/16 at 224 px, tiny = vit_micro at 32 px; auto: full on CUDA, tiny elsewhere or with BENCH_QUICK')
    ap.add_argument('--arch'); ap.add_argument('--img', type=int); ap.add_argument('--patch', type=int)
    ap.add_argument('--bs', type=int); ap.add_argument('--reps', type=int, help='timed steps per candidate')
    ap.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument('--passes', nargs='+', default=['batched', 'per-view'], choices=['batched', 'per-view'])
    ap.add_argument('--amp', choices=('auto', 'bf16', 'off'), default='auto')
    ap.add_argument('--compile', nargs='+', default=['auto'], help=f"'auto' (CUDA: all setups; CPU: off), 'off', or setups from {SETUPS}")
    ap.add_argument('--compile-backend', default='inductor', help="torch.compile backend ('eager' only traces: for tests)")
    ap.add_argument('--channels-last', choices=('auto', 'on', 'off'), default='auto')
    ap.add_argument('--data', choices=('auto', 'on', 'off'), default='auto', help='the JPEG data path (auto: on)')
    ap.add_argument('--n-jpeg', type=int, help='JPEG files to generate for the data path')
    ap.add_argument('--workers', type=int, default=None, help='loader workers for the data path (default: all cores but two, which launch the GPU work; 2 on a CPU)')
    ap.add_argument('--profile', action='store_true', help='also profile MoCo v3 and LoDisc per operator')
    ap.add_argument('--peak-tflops', type=float, help='dense bf16 peak of this device, TFLOP/s (default: PEAK_BF16_TFLOPS)')
    ap.add_argument('--budget-s', type=float, default=200., help='start no new compiled candidate after this many seconds')
    ap.add_argument('--out', help='also write every table to this markdown file (rewritten after each section)')
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    size = a.size if a.size != 'auto' else ('tiny' if quick() or dev.type != 'cuda' else 'full')
    for k, v in (FULL if size == 'full' else TINY).items():
        if getattr(a, k) is None: setattr(a, k, v)
    if quick(): a.reps, a.n_jpeg = min(a.reps, 2), min(a.n_jpeg, 48)
    a.size, a.dtype = size, amp_dtype(dev, a.amp)
    comp = [c for c in a.compile]
    if comp == ['auto']: comp = list(SETUPS) if dev.type == 'cuda' else []
    elif comp in (['off'], ['none']): comp = []
    elif comp == ['on']: comp = ['blocks']
    bad = [c for c in comp if c not in SETUPS]
    if bad: ap.error(f"--compile: unknown setup(s) {bad}; choose from {SETUPS}, 'auto' or 'off'")
    a.setups = comp
    a.channels_last = a.channels_last == 'on' or (a.channels_last == 'auto' and dev.type == 'cuda')
    a.use_data = a.data == 'on' or a.data == 'auto'
    if a.workers is None: a.workers = max(1, (os.cpu_count() or 1) - 2) if dev.type == 'cuda' else min(2, os.cpu_count() or 1)
    return a


class Out:
    "The markdown file of `--out`, rewritten after every section (a run cut short keeps what it measured)."
    def __init__(self, path, a, argv):
        self.path, self.parts = (Path(path) if path else None), []
        self.head = [f"# Training-step bench (bench/gpu.py)", "",
                     f"Run {datetime.now().strftime('%Y-%m-%d %H:%M')} with `python bench/gpu.py {' '.join(argv)}`".rstrip() + ".",
                     f"Machine: {machine(a.device)}; {os.cpu_count()} CPU cores.", ""]
    def add(self, title, rows, notes=''):
        keys = list(rows[0]) if rows else []
        fmt = lambda v: (f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}") if isinstance(v, float) else str(v)
        self.parts += [f"### {title}", ""] + (["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                                              + ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows] if rows else ["(no rows)"])
        self.parts += ["", notes, ""] if notes else [""]
        self.write()
    def lines(self, lines): self.parts += lines; self.write()
    def write(self):
        if self.path: self.path.parent.mkdir(parents=True, exist_ok=True); self.path.write_text("\n".join(self.head + self.parts) + "\n")


def step_rows(a, cands, st, flops, counts, peak):
    "One row per candidate from the interleaved timings `st`."
    med = lambda k: st[k]['median'] if k in st else float('nan')
    rows = []
    for k, c in cands.items():
        if k not in st: continue
        eager = c.variant + ('' if c.passes == 'batched' else ' per-view')
        moco = 'MoCo v3' + ('' if c.passes == 'batched' else ' per-view') + (f' compiled:{c.setup}' if c.setup else '')
        fl = flops.get(c.variant, float('nan'))
        rows.append(dict(candidate=k, ms_per_step=med(k) * 1e3, iqr_ms=f"{st[k]['lo'] * 1e3:.3g}-{st[k]['hi'] * 1e3:.3g}",
                         images_per_s=a.bs / med(k), vs_mocov3=med(k) / med(moco),
                         vs_eager=med(k) / med(eager) if c.setup else float('nan'),
                         vs_per_view=med(k) / med(f"{c.variant} per-view") if c.passes == 'batched' and not c.setup else float('nan'),
                         tflop_per_step=fl / 1e12, mfu=fl / med(k) / (peak * 1e12) if peak else float('nan'),
                         peak_mb=c.peak_mb(), kernel_ops=counts.get(k, ('-', '-'))[0], syncs=counts.get(k, ('-', '-'))[1],
                         compile_s=c.compile_s))
    return rows


def best_img_s(rows, variant=''):
    "The best images/s among the candidates whose name starts with `variant` (any of them with '')."
    return max((r['images_per_s'] for r in rows if r['candidate'].startswith(variant)), default=float('nan'))


def main(argv=None):
    t0 = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    dev = torch.device(a.device)
    if dev.type == 'cuda': torch.set_float32_matmul_precision('high')
    out, notes = Out(a.out, a, argv), []
    dtype = 'bf16 autocast' if a.dtype is not None else 'float32'
    peak = peak_tflops(dev, a.peak_tflops) if a.dtype is not None or a.peak_tflops else None
    shape = f"{a.arch}, {a.img} px, patch {a.patch}, batch {a.bs}, {dtype}, channels-last {'on' if a.channels_last else 'off'}, {dev.type}"

    # 1. eager candidates: FLOPs, operators and host syncs per step, then a first interleaved timing
    cands, flops, counts = {}, {}, {}
    for v in a.variants:
        for p in a.passes:
            c = Candidate(v, a, dev, passes=p)
            c.step(); sync(dev)                                     # first step: allocator warm-up, AdamW state
            with OpCounter() as oc: c.forward_backward()       # the model only: CPU AdamW syncs per tensor, fused CUDA AdamW not
            counts[c.name] = (oc.kernel_ops, oc.syncs)
            if p == 'batched': flops[v] = count_flops(c.step)
            cands[c.name] = c
    st = compare({k: c.step for k, c in cands.items()}, warmup=2, reps=a.reps, device=dev)
    rows = step_rows(a, cands, st, flops, counts, peak)
    out.add(f"Eager steps, first timing ({shape})", rows, "Preliminary: the final table below times every candidate together.")

    # 2. the JPEG data path, against the eager step (the ratios are updated with the final step times below)
    drows, dnotes = [], []
    if a.use_data:
        feed = cands.get('LoDisc pixel') or next(iter(cands.values()))
        drows, dnotes = data_path(a, dev, feed)
        out.add(f"Data path, first timing ({a.img} px, batch {a.bs}, {dev.type})", drows, ' '.join(dnotes))

    # 3. compiled candidates, while the budget lasts
    for s in a.setups:
        for v in a.variants:
            name = f"{v} compiled:{s}"
            if time.perf_counter() - t0 > a.budget_s:
                notes.append(f"{name}: not built (the {a.budget_s:.0f} s budget was spent)."); continue
            try:
                t1 = time.perf_counter()
                c = Candidate(v, a, dev, setup=s)
                for _ in range(3): c.step()                         # compiles; CUDA graphs record after warm-up runs
                sync(dev); c.compile_s = time.perf_counter() - t1
                cands[name] = c
            except Exception as e:                                  # compiling is an option: the eager numbers stand
                msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ''
                notes.append(f"{name}: failed ({type(e).__name__}: {msg}).")
                traceback.print_exc(limit=3)

    # 4. every candidate, interleaved: the table that counts
    if any(c.setup for c in cands.values()) or not rows:
        st = compare({k: c.step for k, c in cands.items()}, warmup=2, reps=a.reps, device=dev)
        rows = step_rows(a, cands, st, flops, counts, peak)
    title = f"GPU throughput: LoDisc vs MoCo v3, batched vs per-view, eager vs compiled ({shape})"
    text = ("images/s = batch / median step time (two views per image). vs_mocov3 = step time over MoCo v3's with the same passes "
            "and compile setup; vs_eager = compiled over eager time of the same variant (< 1: compiling pays); vs_per_view = "
            "batched over per-view step time. tflop_per_step: FLOPs of forward + backward counted by FlopCounterMode "
            f"(2 per multiply-add); mfu = achieved FLOP/s over the dense bf16 peak ({f'{peak:.0f} TFLOP/s' if peak else 'unknown here: nan'}). "
            "peak_mb = static memory (weights, grads, AdamW state) + peak extra allocation during one step (CUDA only). "
            "kernel_ops / syncs = ATen operators that do device work (views and allocations left out: a proxy for kernel launches) / host synchronisations, in one eager forward + backward. compile_s = building + first "
            "three steps. " + ' '.join(notes))
    report(title, rows, device=dev, notes=text)
    out.add(title, rows, text)
    if drows:
        fastest, moco, pixel = best_img_s(rows), best_img_s(rows, 'MoCo v3'), best_img_s(rows, 'LoDisc pixel')
        for r in drows: r.update(over_fastest_step=r['images_per_s'] / fastest, over_mocov3_step=r['images_per_s'] / moco,
                                 over_lodisc_pixel_step=r['images_per_s'] / pixel)
        dtitle = f"Data path: JPEG folder to two views on the device vs the training step ({a.img} px, batch {a.bs}, {dev.type})"
        dtext = ("images/s of read + decode + resize to the training size + two views (TwoViews on the device), each path alone, and "
                 "the training step fed by the loader workers; over_*_step = that over the step's images/s (best of eager / "
                 f"compiled, final table): fastest {fastest:.4g}, MoCo v3 {moco:.4g}, LoDisc pixel {pixel:.4g}. >= 1.5 keeps the "
                 "device fed with room to spare; the fed row should come close to the step alone. " + ' '.join(dnotes))
        report(dtitle, drows, device=dev, notes=dtext)
        out.add(dtitle, drows, dtext)

    # 5. where the time goes, per operator
    if a.profile:
        pc = {k: cands[k] for k in ('MoCo v3', 'LoDisc drop', 'LoDisc pixel') if k in cands}
        try: lines = ["### Profile: self time per operator, MoCo v3 vs LoDisc (eager, batched)", ""] + profile_steps(pc, dev)
        except Exception as e:
            lines = [f"Profile failed: {type(e).__name__}: {e}"]; traceback.print_exc(limit=4)
        print("\n".join(lines)); out.lines(lines)
    out.lines([f"Total run: {time.perf_counter() - t0:.0f} s."])
    print(f"total {time.perf_counter() - t0:.0f} s" + (f"; wrote {a.out}" if a.out else ''))
    return rows


if __name__ == '__main__': main()
