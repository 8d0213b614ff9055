"""Peak extra memory of one training step, against what backpropagation through time must keep.

``python -m benchmarks.memory`` runs each training workload once to build the optimizer,
then measures one more ``train_on_batch`` with ``tracemalloc`` (NumPy reports its array
buffers to it): the peak of newly allocated bytes during the step. The reference is the
float32 activations that BPTT needs at every step, whatever the implementation::

    SimpleRNN  h                          1 x (T, N, M)
    LSTM       i, f, g, o, c, h           6 x (T, N, M)   (tanh(c) can be recomputed)
    GRU        z, r, hh, rh, h            5 x (T, N, M)   (rh = h_prev W_hh + b_hh, reset_after)

Target: peak extra / must keep <= 1.5.
"""
import sys
import tracemalloc

import numpy as np

from .workloads import TRAIN_SIZES

MUST_KEEP = {"SimpleRNN": 1, "LSTM": 6, "GRU": 5}


def measure(cell, n, t, d, m, k=2):
    from unrolled import layers, optimizers
    from unrolled.models import Sequential

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, t, d)).astype("float32")
    y = rng.standard_normal((n, k)).astype("float32")
    model = Sequential([layers.Input((t, d)), getattr(layers, cell)(m), layers.Dense(k)])
    model.compile(optimizer=optimizers.Adam(1e-3), loss="mse")
    model.train_on_batch(x, y)                       # optimizer slots, kernels compiled
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    model.train_on_batch(x, y)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    keep = MUST_KEEP[cell] * t * n * m * 4
    return peak, keep


def main():
    lines = ["| workload | peak extra | BPTT must keep | ratio |", "|---|---:|---:|---:|"]
    for cell in MUST_KEEP:
        for n, t, d, m in TRAIN_SIZES:
            peak, keep = measure(cell, n, t, d, m)
            lines.append(f"| train {cell} ({n},{t},{d},{m}) | {peak / 2**20:.2f} MiB | "
                         f"{keep / 2**20:.2f} MiB | {peak / keep:.2f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
