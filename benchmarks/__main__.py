"""``make bench``: unrolled, PyTorch and Keras side by side, each in its own process.

``python -m benchmarks`` prints the tables; ``--smoke`` runs a seconds-long subset (what
CI runs); ``--write`` also saves them to benchmarks/RESULTS.md.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from .workloads import INFERENCE_SIZES, all_workloads, name

FRAMEWORKS = ["unrolled", "torch", "keras"]


def gemm_gflops(size=1024, repeats=5):
    a = np.random.default_rng(0).standard_normal((size, size)).astype("float32")
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def recurrent_rates(sizes, repeats=3):
    """GFLOP/s of each large layer's per-step matrix product, issued as the layer's loop
    issues it: ``np.dot`` (the same BLAS call as the compiled loop, whose results are
    bit-identical to it) into a preallocated output, T times in a row.

    Where the layer folds (``fast.cells``: large float32 SimpleRNN and LSTM layers) that
    product is ``[x_t | h] @ [W; U]``, ``(B, F+M) @ (F+M, G*M)`` on ``fold_operands``
    (C order); otherwise it is ``h @ U``, ``(B, M) @ (M, G*M)`` on the layer's own recurrent
    kernel, in its memory order (``profile.step_operands``). The 1024^3 GEMM is timed
    between them (the machine's speed drifts), and the best of those is the reference.
    Returns (rows of (cell, size, product, GFLOP/s), reference GFLOP/s)."""
    from unrolled import layers

    from .profile import step_operands
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype("float32")
    rows, reference = [], 0.0
    for cell in ("SimpleRNN", "LSTM", "GRU"):
        for n, t, d, m in sizes:
            layer = getattr(layers, cell)(m)
            layer.build((n, t, d))
            lhs, rhs = step_operands(layer, n)
            out = np.empty((n, rhs.shape[1]), "float32")

            def steps():
                for _ in range(t):
                    np.dot(lhs, rhs, out=out)
            steps()
            best = float("inf")
            for _ in range(repeats):
                reference = max(reference, 2 * 1024 ** 3 / _timed(lambda: a @ a) / 1e9)
                best = min(best, _timed(steps))
            product = f"({n}x{lhs.shape[1]}) @ ({rhs.shape[0]}x{rhs.shape[1]})"
            if lhs.shape[1] != m:
                product = f"[x\\|h] @ [W;U]: {product}"
            rows.append((cell, (n, t, d, m), product,
                         2 * n * lhs.shape[1] * rhs.shape[1] * t / best / 1e9))
    return rows, reference


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Runner:
    """One framework's timing process (``benchmarks.runner``), fed one workload at a time."""

    def __init__(self, framework, min_seconds):
        self.framework = framework
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.runner", framework, str(min_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def time(self, workload):
        self.proc.stdin.write(json.dumps(workload) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} benchmark process failed "
                               f"(exit code {self.proc.wait()}); its error is printed above.")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def cpu():
    """What the numbers depend on: the CPU's model name, its vector extensions (AVX2,
    AVX-512, AMX) and the kernels OpenBLAS chose for it (threadpoolctl's "architecture",
    e.g. Haswell or SkylakeX). Returns (one-line description, kind); tables are kept per
    kind, since machines of the same kind with other CPUs rank the frameworks differently."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    amx = sorted(f for f in flags if f.startswith("amx"))
    blas = "BLAS unknown (pip install threadpoolctl)"
    core = "unknown"
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            core = info[0].get("architecture") or "unknown"
            blas = (f"{info[0].get('internal_api')} {info[0].get('version')}, core type "
                    f"{core}, {info[0].get('num_threads')} threads")
    except ImportError:
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    line = (f"CPU: {model}; AVX2 {'yes' if 'avx2' in flags else 'no'}, AVX-512 "
            f"{' '.join(avx512) if avx512 else 'no'}, AMX {' '.join(amx) if amx else 'no'}; "
            f"{blas}")
    # AMX (Intel since Sapphire Rapids) changes what PyTorch's oneDNN kernels do on the same
    # OpenBLAS kernels: such machines keep their own table.
    return line, f"{core} kernels, {vector}" + (", AMX" if amx else "")


def write_section(path, kind, text):
    """Put ``text`` in RESULTS.md as the section of CPU kind ``kind`` ("## On <kind>"),
    replacing that kind's previous section and keeping the others."""
    head, sections = "", {}
    if os.path.exists(path):
        with open(path) as f:
            parts = f.read().split("\n## On ")
        head = parts[0]
        for part in parts[1:]:
            title, _, body = part.partition("\n")
            sections[title.strip()] = body
    if not head.strip():
        head = ("# Benchmark results\n\nOne section per kind of CPU (the kernels OpenBLAS "
                "picks, and the vector extensions): ratios differ between kinds, so each "
                "keeps its own tables. `make bench` prints a run; `python -m benchmarks "
                "--write` replaces the section of the machine's kind.\n")
    sections[kind] = "\n" + text.strip("\n") + "\n\n"
    with open(path, "w") as f:
        f.write(head.rstrip("\n") + "\n" + "".join(
            f"\n## On {title}\n{body.rstrip() + chr(10)}" for title, body in sections.items()))


def run_all(frameworks, workloads, min_seconds, rounds):
    """Seconds per call, ``{framework: [[per round] per workload]}``.

    The frameworks take turns on each workload, so that a machine that speeds up or slows
    down over minutes (shared machines do) shifts all of them alike."""
    runners = [Runner(fw, min_seconds) for fw in frameworks]
    times = {fw: [[] for _ in workloads] for fw in frameworks}
    try:
        for r in range(rounds):
            for i, w in enumerate(workloads):
                print(f"round {r + 1}/{rounds}: {name(w)}", file=sys.stderr, flush=True)
                for runner in runners:
                    times[runner.framework][i].append(runner.time(w))
    finally:
        for runner in runners:
            runner.close()
    return times


def _fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def table(workloads, times):
    """The times table: each framework's best round, their ratio, and the ratio of each
    round on its own (the frameworks ran back to back in it), whose range shows how much
    of a margin the machine's drift can move."""
    lines = ["| workload | unrolled | PyTorch | Keras | unrolled / fastest other "
             "| per round |", "|---|---:|---:|---:|---:|---:|"]
    others = [f for f in ("torch", "keras") if f in times]
    for i, w in enumerate(workloads):
        best = {f: min(times[f][i]) for f in times}
        ratio = best["unrolled"] / min(best[f] for f in others) if others else float("nan")
        rounds = [ours / min(times[f][i][r] for f in others)
                  for r, ours in enumerate(times["unrolled"][i])] if others else []
        spread = f"{min(rounds):.2f}-{max(rounds):.2f}" if len(rounds) > 1 else "-"
        cells = [_fmt(best[f]) if f in best else "-" for f in FRAMEWORKS]
        lines.append(f"| {name(w)} | " + " | ".join(cells) + f" | {ratio:.2f} | {spread} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long subset")
    parser.add_argument("--write", action="store_true", help="save benchmarks/RESULTS.md")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=3, help="rounds, best of them kept")
    parser.add_argument("--only", default="", help="workloads whose name contains this text, "
                        "e.g. 'infer LSTM' (not with --write)")
    args = parser.parse_args(argv)
    if args.only and args.write:
        parser.error("--write saves the full tables: run it without --only")
    workloads = [w for w in all_workloads(smoke=args.smoke) if args.only in name(w)]
    min_seconds = 0.01 if args.smoke else 0.2
    results = run_all(args.frameworks.split(","), workloads, min_seconds,
                      rounds=1 if args.smoke else args.rounds)
    gflops = gemm_gflops()
    description, kind = cpu()
    header = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
              f"NumPy {np.__version__}; float32 GEMM (1024^3): {gflops:.1f} GFLOP/s",
              "", description, "", f"Date: {time.strftime('%Y-%m-%d')}", ""]
    lines = header + table(workloads, results)
    large = [size for size in INFERENCE_SIZES[1:] if any(w[2:6] == size for w in workloads)]
    if large and "unrolled" in results:
        rates, reference = recurrent_rates(large)
        lines += ["", "Recurrent products at the large sizes (target: at least 70% of the GEMM "
                  f"rate, here {reference:.1f} GFLOP/s, the best 1024^3 GEMM timed between "
                  "them; `recurrent_rates` says how they are timed):", "",
                  "| layer | product | GFLOP/s | share of GEMM rate |", "|---|---|---:|---:|"]
        for cell, (n, t, d, m), product, rate in rates:
            lines.append(f"| {cell} ({n},{t},{d},{m}) | {product} | "
                         f"{rate:.1f} | {rate / reference:.0%} |")
    if not args.only or args.only in "cold start":
        from . import cold
        frameworks = [f for f in FRAMEWORKS if f in args.frameworks.split(",")]
        lines += ["", "Cold starts: a fresh process imports, builds the model and predicts once "
                  f"(wall time of the process, best of {1 if args.smoke else cold.ROUNDS}; "
                  "`benchmarks/cold.py`; target at most 0.5x PyTorch):", ""]
        models = list(cold.MODELS)[:1] if args.smoke else list(cold.MODELS)   # smoke: the path
        lines += cold.table(cold.run(frameworks, 1 if args.smoke else cold.ROUNDS, models))
    if not args.smoke and (not args.only or args.only in "end to end"):
        # (--smoke leaves it out: `python -m benchmarks.endtoend --smoke` is its own.)
        from . import endtoend
        frameworks = tuple(f for f in FRAMEWORKS if f in args.frameworks.split(","))
        before = os.getloadavg()[0]
        times = endtoend.run(frameworks, endtoend.ROUNDS)
        lines += ["", endtoend.intro(endtoend.ROUNDS), "",
                  endtoend.load_note(before, os.getloadavg()[0]), ""]
        lines += endtoend.table(times)
    print("\n".join(lines))
    if args.write:
        memory = subprocess.run([sys.executable, "-m", "benchmarks.memory"], check=True,
                                capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(os.path.dirname(__file__), "RESULTS.md")
        write_section(path, kind, f"Times per call (the best of {args.rounds} interleaved "
                      "rounds, each the median of 5); ratio < 1 means unrolled is faster than "
                      "both PyTorch and Keras. \"per round\" is the range of the ratio within "
                      "each round, where the frameworks ran back to back.\n\n"
                      + "\n".join(lines) + "\n\n### Training memory\n\nPeak extra memory "
                      "of one `train_on_batch` (tracemalloc) over the activations BPTT must "
                      "keep (`python -m benchmarks.memory`; target 1.5):\n\n" + memory.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
