"""The one timing harness every `bench/` script uses.

Machines here are noisy, so we never quote a lone wall time: `compare` runs the candidates *interleaved*
(round-robin, after a warm-up), so that whatever else the machine does hits all of them alike, and reports
each one's median and spread plus the ratios between them. Scripts print a markdown table and, when
`BENCH_JSON` names a file, append their rows to it (that is how `run_all.py` builds its table).
"""
import json, os, platform, statistics, subprocess, sys, time
from pathlib import Path

import torch

__all__ = ['sync', 'compare', 'ratio', 'machine', 'report', 'peak_rss_mb', 'peak_mem_mb', 'cuda_peak_mb', 'quick']

def quick() -> bool:
    "True when a test asks for the smallest possible run (`BENCH_QUICK=1`): sizes shrink, numbers mean nothing."
    return os.environ.get('BENCH_QUICK', '') not in ('', '0')

def sync(device=None):
    "Wait for queued GPU work, so that a timer measures the work and not its launch."
    if torch.cuda.is_available() and (device is None or torch.device(device).type == 'cuda'): torch.cuda.synchronize()

def compare(fns, warmup=2, reps=10, device=None):
    "Time each callable in `fns` (name -> fn), interleaved; returns name -> dict(median, lo, hi, n) in seconds."
    names = list(fns)
    if quick(): warmup, reps = min(warmup, 1), min(reps, 2)
    for _ in range(warmup):
        for k in names: fns[k](); sync(device)
    times = {k: [] for k in names}
    for i in range(reps):
        order = names if i % 2 == 0 else names[::-1]  # alternate the order: no candidate always runs first
        for k in order:
            sync(device); t0 = time.perf_counter(); fns[k](); sync(device)
            times[k].append(time.perf_counter() - t0)
    out = {}
    for k, ts in times.items():
        ts = sorted(ts)
        q = lambda p: ts[min(len(ts) - 1, int(p * (len(ts) - 1) + 0.5))]
        out[k] = dict(median=statistics.median(ts), lo=q(0.25), hi=q(0.75), n=len(ts))
    return out

def ratio(stats, a, b):
    "Median time of `a` over median time of `b`."
    return stats[a]['median'] / stats[b]['median']

def machine(device='cpu'):
    "One line naming the hardware and software a number came from."
    dev = torch.device(device)
    if dev.type == 'cuda': hw = torch.cuda.get_device_name(dev)
    else:
        hw = platform.processor() or platform.machine()
        try:
            for line in Path('/proc/cpuinfo').read_text().splitlines():
                if line.startswith('model name'): hw = line.split(':', 1)[1].strip(); break
        except OSError: pass
        hw = f"{hw}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    return f"{hw}; torch {torch.__version__}; Python {platform.python_version()}"

def peak_rss_mb(code, setup='', python=sys.executable, env=None):
    """CPU peak memory of `code` in MB: run `setup`, then `code`, in a fresh Python, and return the growth of the
    process's peak resident set (ru_maxrss) caused by `code` alone. CPU tensors have no allocator counter, so
    this is the honest CPU measure (it includes allocator caching, like any RSS figure)."""
    prog = (f"import resource\n{setup}\n"
            "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"{code}\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024)")
    res = subprocess.run([python, '-c', prog], capture_output=True, text=True, env=env or os.environ.copy())
    if res.returncode: raise RuntimeError(f"peak_rss_mb: the measured code failed:\n{res.stderr[-2000:]}")
    return float(res.stdout.strip().splitlines()[-1])

_HWM = """
def _hwm_mb():
    try:
        for l in open('/proc/self/status'):
            if l.startswith('VmHWM:'): return int(l.split()[1]) / 1024
    except OSError: pass
    import resource; return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

def peak_mem_mb(code, setup='', python=sys.executable, env=None):
    """Like `peak_rss_mb`, but the child reads its *own* peak (Linux `VmHWM` in /proc/self/status). A child's
    `ru_maxrss` starts at its parent's peak (Linux carries it across fork/exec), so `peak_rss_mb` reports 0 once the
    calling process is bigger than the measured code; `VmHWM` belongs to the new program alone. Falls back to
    `ru_maxrss` where /proc is missing."""
    prog = f"{_HWM}\n{setup}\nr0 = _hwm_mb()\n{code}\nprint(_hwm_mb() - r0)"
    res = subprocess.run([python, '-c', prog], capture_output=True, text=True, env=env or os.environ.copy())
    if res.returncode: raise RuntimeError(f"peak_mem_mb: the measured code failed:\n{res.stderr[-2000:]}")
    return float(res.stdout.strip().splitlines()[-1])

def cuda_peak_mb(fn, device='cuda'):
    "Peak GPU memory allocated while `fn` runs, in MB."
    torch.cuda.reset_peak_memory_stats(device); sync(device)
    fn(); sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**20

def _fmt(v):
    if isinstance(v, float): return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)

def report(title, rows, device='cpu', notes=''):
    """Print `rows` (a list of dicts with the same keys) as a markdown table under `title` with the machine line,
    and append them to the JSON-lines file named by `BENCH_JSON`, if set."""
    keys = list(rows[0])
    lines = [f"### {title}", "", f"Machine: {machine(device)}", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in rows]
    if notes: lines += ["", notes]
    print("\n".join(lines) + "\n")
    out = os.environ.get('BENCH_JSON')
    if out:
        with open(out, 'a') as f: f.write(json.dumps(dict(title=title, machine=machine(device), rows=rows, notes=notes)) + "\n")
    return rows
