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
   (achieved FLOP/s over the device's dense bf16 peak, `PEAK_BF16_TFLOPS`), peak memory, and per step the ATen
   operators dispatched (a CPU-side proxy for kernel launches) and the host synchronisations (`.item()`, `nonzero`...:
   each one waits for the GPU to finish everything queued).
2. **Compile setups** (`--compile`, CUDA default `auto` = all of them, CPU default off): 'blocks' (every transformer
   block compiled), 'model' (`LoDisc.forward` compiled: encoders, heads, mask and loss in one graph, broken where
   the model syncs), 'model-fullgraph' (the same, failing instead of breaking), 'model-max-autotune' (Triton GEMM
   autotuning, no CUDA graphs), 'model-cudagraphs' (`mode='reduce-overhead'`: CUDA graphs, shapes are fixed) and
   'step' (forward + backward + AdamW + momentum update in one compiled function, with compiled autograd). A setup
   that fails is reported in the notes; the eager numbers still stand. New setups start only while less than
   `--budget-s` has passed.
3. **JPEG data path** (`--data`): a temporary folder of `--n-jpeg` JPEGs of 500 x 375 px (CUB's typical size) read at
   the training size and turned into two views on the device, in images/s, against the step's images/s: (a) fastai
   loader workers decoding with PIL (`--workers`, default: all cores), (b) the files' bytes read by workers and
   decoded on the device in batches (`torchvision.io.decode_jpeg(list, device=...)`), then resized in one
   `roi_align`, (c) the in-memory path the library uses for sets that fit in RAM (uint8 tensor -> two views).
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
FULL = dict(arch='vit_small', img=224, patch=16, bs=128, reps=20, n_jpeg=1536)
TINY = dict(arch='vit_micro', img=32, patch=8, bs=16, reps=4, n_jpeg=48)

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets. Matched against
# torch.cuda.get_device_name in this order (first match wins); --peak-tflops overrides.
PEAK_BF16_TFLOPS = [('H200', 989.), ('H100 PCIe', 756.), ('H100 NVL', 835.), ('H100', 989.), ('H800', 989.),
                    ('GH200', 989.), ('B200', 2250.), ('A100', 312.), ('A800', 312.), ('L40S', 362.), ('L4', 121.),
                    ('A10G', 70.), ('A10', 125.)]


def peak_tflops(device, override=None):
    "The device's dense bf16 peak in TFLOP/s (None on a CPU or an unknown GPU)."
    if override: return float(override)
    dev = torch.device(device)
    if dev.type != 'cuda': return None
    name = torch.cuda.get_device_name(dev)
    return next((v for k, v in PEAK_BF16_TFLOPS if k in name), None)


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
    m = cand.model
    if setup == 'blocks': compile_blocks(m, backend=backend)
    elif setup == 'model': m.compile(dynamic=False, backend=backend)
    elif setup == 'model-fullgraph': m.compile(dynamic=False, fullgraph=True, backend=backend)
    elif setup == 'model-max-autotune': m.compile(dynamic=False, mode='max-autotune-no-cudagraphs', backend=backend)
    elif setup == 'model-cudagraphs':
        m.compile(dynamic=False, mode='reduce-overhead', backend=backend); cand.mark_step = True
    elif setup == 'step':
        import torch._dynamo
        torch._dynamo.config.compiled_autograd = True     # trace loss.backward() inside the compiled step too
        cand._step = torch.compile(cand._step, dynamic=False, backend=backend)
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

    def _step(self):
        with autocast(self.device, self.dtype): out = self.model(self.x1, self.x2)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
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
def make_jpeg_folder(root, n, size=(500, 375), seed=0, quality=90):
    "Write `n` JPEGs of `size` (w, h), smooth random colours plus texture (file sizes like photos'), into `root`."
    from PIL import Image
    import numpy as np
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        w, h = size if i % 4 else size[::-1]                          # a quarter in portrait, as in CUB
        base = Image.fromarray(rng.integers(0, 256, (h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        img = np.clip(np.asarray(base, dtype=np.int16) + rng.integers(-12, 13, (h, w, 1), dtype=np.int16), 0, 255).astype(np.uint8)
        f = root / f"{i:05d}.jpg"; Image.fromarray(img).save(f, quality=quality); files.append(f)
    return files


class JpegFiles(torch.utils.data.Dataset):
    "Files -> uint8 (3, size, size) with the library's reader (`read_image`: PIL, JPEG draft mode, bicubic), or raw bytes."
    def __init__(self, files, size, raw=False): self.files, self.size, self.raw = list(files), size, raw
    def __len__(self): return len(self.files)
    def __getitem__(self, i):
        if self.raw:
            import numpy as np
            return torch.from_numpy(np.fromfile(self.files[i], dtype=np.uint8))
        from lodisc_nb.data import read_image
        return read_image(self.files[i], self.size)[0]


def decode_resize(data, size, device):
    "A list of JPEG byte tensors -> uint8 (B, 3, size, size) on `device`: one batched decode, one `roi_align` resize."
    from torchvision.io import decode_jpeg, ImageReadMode
    from torchvision.ops import roi_align
    imgs = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    hw = torch.tensor([im.shape[-2:] for im in imgs], dtype=torch.float32)          # (B, 2) sizes: host metadata, no sync
    dt = torch.float16 if torch.device(device).type == 'cuda' else torch.float32
    pad = torch.nested.nested_tensor([im.to(dt) for im in imgs]).to_padded_tensor(0.)  # (B, 3, Hmax, Wmax)
    boxes = torch.cat([torch.arange(len(imgs), dtype=torch.float32)[:, None], torch.zeros(len(imgs), 2), hw.flip(1)], 1)
    out = roi_align(pad, boxes.to(pad.device, dt), (size, size), spatial_scale=1., sampling_ratio=2, aligned=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def data_path(a, dev, step_img_s):
    "images/s of the JPEG data path (read + decode + resize + two views on the device), each way, and over the step's."
    from fastai.data.load import DataLoader
    from lodisc_nb.data import TwoViews
    views = TwoViews(a.img)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        files = make_jpeg_folder(tmp, a.n_jpeg)
        notes.append(f"{a.n_jpeg} JPEGs of 500x375 (a quarter 375x500), quality 90, "
                     f"{sum(f.stat().st_size for f in files) / len(files) / 1024:.0f} KB each on average, written in "
                     f"{time.perf_counter() - t0:.0f} s (they sit in the page cache: this measures decoding, not the disk).")
        bs = min(a.bs, len(files) // 2)
        pin = dev.type == 'cuda'

        def run(batches, to_views):
            "Time all of `batches` (after the first, which starts the workers) through `to_views`; images/s."
            it = iter(batches); to_views(next(it)); sync(dev)
            n, t0 = 0, time.perf_counter()
            for b in it: to_views(b); n += bs
            sync(dev)
            return n / (time.perf_counter() - t0)

        def two_views(x): return views.views(x.to(dev, non_blocking=True))
        cands = {}
        workers = a.workers
        dl = DataLoader(JpegFiles(files, a.img), bs=bs, num_workers=workers, pin_memory=pin, drop_last=True, shuffle=True,
                        persistent_workers=False)
        cands[f'PIL in {workers} fastai loader workers'] = lambda: run(dl, two_views)
        raw = DataLoader(JpegFiles(files, a.img, raw=True), bs=bs, num_workers=min(workers, 4), drop_last=True, shuffle=True,
                         create_batch=list)
        cands[f'decode_jpeg on {dev.type} (bytes read by {min(workers, 4)} workers)'] = \
            lambda: run(raw, lambda b: views.views(decode_resize(b, a.img, dev)))
        mem = torch.randint(0, 256, (len(files), 3, a.img, a.img), dtype=torch.uint8)
        mem = mem.pin_memory() if pin else mem
        cands['in memory (uint8 tensor, no decoding)'] = lambda: run(mem.split(bs)[:len(files) // bs], two_views)
        for name, fn in cands.items():
            try: ips = fn()
            except Exception as e:
                notes.append(f"{name}: failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})"); traceback.print_exc(limit=4)
                continue
            rows.append(dict(path=name, images_per_s=ips, over_fastest_step=ips / step_img_s['fastest'],
                             over_mocov3_step=ips / step_img_s['MoCo v3'], over_lodisc_pixel_step=ips / step_img_s['LoDisc pixel']))
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
                  ka.table(sort_by='self_cuda_time_total' if cuda else 'self_cpu_time_total', row_limit=top), "```", ""]
    names = list(cands)
    base = names[0]
    keys = sorted({k for n in names for k in per[n] if k.startswith('aten::')},
                  key=lambda k: -max(per[n].get(k, 0.) for n in names))[:top]
    lines += [f"#### ATen operators side by side (self {'device' if cuda else 'CPU'} ms per step)", "",
              "| op | " + " | ".join(names) + f" | {names[-1]} - {base} |", "|---|" + "---|" * (len(names) + 1)]
    lines += [f"| `{k}` | " + " | ".join(f"{per[n].get(k, 0.) / 1e3:.3f}" for n in names)
              + f" | {(per[names[-1]].get(k, 0.) - per[base].get(k, 0.)) / 1e3:+.3f} |" for k in keys]
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
    ap.add_argument('--workers', type=int, default=None, help='loader workers for the data path (default: all cores)')
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
    if a.workers is None: a.workers = min(16, os.cpu_count() or 1) if dev.type == 'cuda' else min(2, os.cpu_count() or 1)
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


def main(argv=None):
    t0 = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    dev = torch.device(a.device)
    if dev.type == 'cuda': torch.set_float32_matmul_precision('high')
    out, notes = Out(a.out, a, argv), []
    cands, flops, counts = {}, {}, {}
    for v in a.variants:                                            # 1. eager candidates, FLOPs, ops and syncs per step
        for p in a.passes:
            c = Candidate(v, a, dev, passes=p)
            c.step(); sync(dev)                                     # first step: allocator warm-up, AdamW state
            with OpCounter() as oc: c.step()
            counts[c.name] = (oc.ops, oc.syncs)
            if p == 'batched': flops[v] = count_flops(c.step)
            cands[c.name] = c
    for v in a.variants: flops.setdefault(v, float('nan'))
    for s in a.setups:                                              # 2. compiled candidates, within the budget
        for v in a.variants:
            name = f"{v} compiled:{s}"
            if time.perf_counter() - t0 > a.budget_s:
                notes.append(f"{name}: not built (the {a.budget_s:.0f} s budget was spent)"); continue
            try:
                t1 = time.perf_counter()
                c = Candidate(v, a, dev, setup=s)
                for _ in range(3): c.step()                         # compiles; CUDA graphs record after warm-up runs
                sync(dev); c.compile_s = time.perf_counter() - t1
                cands[name] = c
            except Exception as e:                                  # compiling is an option: the eager numbers stand
                notes.append(f"{name}: failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''})")
                traceback.print_exc(limit=3)
                if s == 'step':
                    import torch._dynamo; torch._dynamo.config.compiled_autograd = False
    st = compare({k: c.step for k, c in cands.items()}, warmup=2, reps=a.reps, device=dev)   # 3. all steps, interleaved
    peak = peak_tflops(dev, a.peak_tflops) if a.dtype is not None or a.peak_tflops else None
    med = lambda k: st[k]['median'] if k in st else float('nan')
    rows = []
    for k, c in cands.items():
        eager = c.variant + ('' if c.passes == 'batched' else ' per-view')
        moco = 'MoCo v3' + ('' if c.passes == 'batched' else ' per-view') + (f' compiled:{c.setup}' if c.setup else '')
        fl = flops[c.variant]
        rows.append(dict(candidate=k, ms_per_step=med(k) * 1e3, iqr_ms=f"{st[k]['lo'] * 1e3:.3g}-{st[k]['hi'] * 1e3:.3g}",
                         images_per_s=a.bs / med(k), vs_mocov3=med(k) / med(moco),
                         vs_eager=med(k) / med(eager) if c.setup else float('nan'),
                         vs_per_view=med(k) / med(f"{c.variant} per-view") if c.passes == 'batched' and not c.setup else float('nan'),
                         tflop_per_step=fl / 1e12, mfu=fl / med(k) / (peak * 1e12) if peak else float('nan'),
                         peak_mb=c.peak_mb(), ops=counts.get(k, ('-', '-'))[0], syncs=counts.get(k, ('-', '-'))[1],
                         compile_s=c.compile_s))
    dtype = 'bf16 autocast' if a.dtype is not None else 'float32'
    title = (f"GPU throughput: LoDisc vs MoCo v3, batched vs per-view, eager vs compiled ({a.arch}, {a.img} px, patch {a.patch}, "
             f"batch {a.bs}, {dtype}, channels-last {'on' if a.channels_last else 'off'}, {dev.type})")
    text = ("images/s = batch / median step time (two views per image). vs_mocov3 = step time over MoCo v3's with the same passes "
            "and compile setup; vs_eager = compiled over eager time of the same variant (< 1: compiling pays); vs_per_view = "
            "batched over per-view step time. tflop_per_step: FLOPs of forward + backward counted by FlopCounterMode "
            f"(2 per multiply-add); mfu = achieved FLOP/s over the dense bf16 peak ({f'{peak:.0f} TFLOP/s' if peak else 'unknown here: nan'}). "
            "peak_mb = static memory (weights, grads, AdamW state) + peak extra allocation during one step (CUDA only). "
            "ops / syncs = ATen operators dispatched / host synchronisations in one eager step. compile_s = building + first "
            "three steps. " + ' '.join(notes))
    report(title, rows, device=dev, notes=text)
    out.add(title, rows, text)
    if a.use_data:                                                  # 4. the JPEG data path vs the step
        best = lambda v: max((r['images_per_s'] for r in rows if r['candidate'].startswith(v)), default=float('nan'))
        step_img_s = {'fastest': max(r['images_per_s'] for r in rows), 'MoCo v3': best('MoCo v3'), 'LoDisc pixel': best('LoDisc pixel')}
        drows, dnotes = data_path(a, dev, step_img_s)
        dtitle = f"Data path: JPEG folder to two views on the device vs the training step ({a.img} px, batch {a.bs}, {dev.type})"
        dtext = ("images/s of read + decode + resize to the training size + two views (TwoViews on the device), each path alone; "
                 "over_*_step = that over the step's images/s (best of eager / compiled; >= 1.5 keeps the device fed with room "
                 f"to spare). Steps: fastest {step_img_s['fastest']:.0f}, MoCo v3 {step_img_s['MoCo v3']:.0f}, LoDisc pixel "
                 f"{step_img_s['LoDisc pixel']:.0f} images/s. " + ' '.join(dnotes))
        if drows:
            report(dtitle, drows, device=dev, notes=dtext)
        out.add(dtitle, drows, dtext)
    if a.profile:                                                   # 5. where the time goes, per operator
        pc = {k: cands[k] for k in ('MoCo v3', 'LoDisc drop', 'LoDisc pixel') if k in cands}
        lines = ["### Profile: self time per operator, MoCo v3 vs LoDisc (eager, batched)", ""] + profile_steps(pc, dev)
        print("\n".join(lines)); out.lines(lines)
    out.lines([f"Total run: {time.perf_counter() - t0:.0f} s."])
    print(f"total {time.perf_counter() - t0:.0f} s" + (f"; wrote {a.out}" if a.out else ''))
    return rows


if __name__ == '__main__': main()
