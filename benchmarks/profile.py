"""Where the time of an inference workload goes: ``python -m benchmarks.profile``.

For each of unrolled's inference workloads it times, in one process, alternating:

- the whole call, ``predict_on_batch``;
- the per-step matrix products alone, T of them, issued as the layer issues them
  (``step_operands``): ``[x_t | h] @ [W; U]`` where the layer folds (transposed where the
  LSTM runs unit-major, ``unit_major``), else ``h @ U``;
- the input projection alone where the layer does not fold: all steps' ``x W`` as one
  product (the layer makes it in chunks of about 4 MB);

and reports the rest (the fused step kernels, copies, Python) as the difference. Shares
are of the median whole call; the machine drifts, so read them as rough proportions.
"""
import statistics
import sys
import time

import numpy as np

from .workloads import CELLS, INFERENCE_SIZES, NOTEBOOK


def step_operands(layer, n, dtype=np.float32):
    """``(lhs, rhs)``: the operands of the matrix product a built recurrent ``layer`` issues
    every step for a batch of ``n``, as it issues it, filled with random values. Folded
    (the compiled implementation's ``folds``) they are ``fast.cells.fold_operands``;
    otherwise ``h`` and the recurrent kernel in its own memory order."""
    from unrolled.fast import cells
    impl = cells.of_cell(layer.cell)
    if impl is not None and impl.infers(dtype) and impl.folds(dtype, n):
        lhs, rhs = cells.fold_operands(layer.cell, n, dtype)
    else:
        rhs = layer.cell.recurrent_kernel.value
        lhs = np.empty((n, rhs.shape[0]), dtype)
    lhs[...] = np.random.default_rng(0).standard_normal(lhs.shape)
    return lhs, rhs


def unit_major(layer, n, dtype=np.float32):
    """True when the layer's folded inference on a batch of ``n`` takes its step product
    transposed, ``(o @ fk)^T`` (``fast.blas.matmul_t``: the LSTM's unit-major layout)."""
    from unrolled.fast import cells
    impl = cells.of_cell(layer.cell)
    return (impl is not None and hasattr(impl, "unit_major") and impl.infers(dtype)
            and impl.folds(dtype, n) and impl.unit_major(n, layer.cell.kernel.shape[0]))


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def breakdown(cell, n, t, d, m, k=2, repeats=None):
    """Median seconds of (whole call, step products, projection) for one workload."""
    from unrolled import layers
    from unrolled.models import Sequential
    x = np.random.default_rng(0).standard_normal((n, t, d)).astype("float32")
    model = Sequential([layers.Input((t, d)), getattr(layers, cell)(m), layers.Dense(k)])
    layer = model.layers[0]
    lhs, rhs = step_operands(layer, n)
    out = np.empty((n, rhs.shape[1]), "float32")
    folded = lhs.shape[1] != m                                # [x_t | h], F + M wide

    def products():
        for _ in range(t):
            np.dot(lhs, rhs, out=out)

    if unit_major(layer, n):                                  # (o @ fk)^T, as the layer
        from unrolled.fast import kernels
        matmul_t, lhs_t = kernels._load()["matmul_t"], lhs.T.copy().reshape(-1)
        out = out.reshape(-1)

        def products():                                       # noqa: F811
            for _ in range(t):
                matmul_t(lhs_t, n, rhs, out)

    def projection():                           # all steps' x W as one product
        np.dot(xs, kernel, out=xp)

    parts = [lambda: model.predict_on_batch(x), products, lambda: None]
    if not folded:
        kernel = layer.cell.kernel.value
        xs = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(t * n, d)
        xp = np.empty((t * n, kernel.shape[1]), "float32")
        parts[2] = projection
    for part in parts:
        part()
    once = _timed(parts[0])
    repeats = repeats or max(5, min(200, int(1.0 / max(once, 1e-6))))
    samples = [[] for _ in parts]
    for _ in range(repeats):
        for s, part in zip(samples, parts):
            s.append(_timed(part))
    whole, products_time, projection_time = (statistics.median(s) for s in samples)
    return [whole, products_time, 0.0 if folded else projection_time], folded


def main(argv=None):
    lines = ["| workload | whole call | step products | projection | rest |",
             "|---|---:|---:|---:|---:|"]
    sizes = [NOTEBOOK[2:6]] + INFERENCE_SIZES
    for cell in CELLS:
        for n, t, d, m in sizes:
            (whole, prod, proj), folded = breakdown(cell, n, t, d, m)
            rest = whole - prod - proj
            share = lambda s: f"{s * 1e3:.2f} ms ({s / whole:.0%})"  # noqa: E731
            lines.append(f"| {cell} ({n},{t},{d},{m}){' folded' if folded else ''} | "
                         f"{whole * 1e3:.2f} ms | {share(prod)} | "
                         f"{'-' if folded else share(proj)} | {share(rest)} |")
            print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
