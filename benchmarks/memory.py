"""Peak extra memory of one training step, against what backpropagation through time must keep.

``python -m benchmarks.memory`` runs each training workload once to build the optimizer,
then measures one more ``train_on_batch`` with ``tracemalloc`` (NumPy reports its array
buffers to it): the peak of newly allocated bytes during the step. The reference is the
float32 activations that BPTT needs at every step, whatever the implementation::

    SimpleRNN  h                          1 x (T, N, M)
    LSTM       i, f, g, o, c, h           6 x (T, N, M)   (tanh(c) can be recomputed)
    GRU        z, r, hh, rh, h            5 x (T, N, M)   (rh = h_prev W_hh + b_hh, reset_after)

Target: peak extra / must keep <= 1.5. The table also shows the float32 weight gradients,
which every step must allocate too: at the notebook's size (1, 10, 3, 5) they alone exceed
half the activations, so no step that allocates its gradients can meet the target there.
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
    grads = sum(layer.count_params() for layer in model.layers) * 4
    return peak, keep, grads


def _size(nbytes):
    return f"{nbytes / 2**20:.2f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.2f} KiB"


def main():
    lines = ["| workload | peak extra | BPTT must keep | ratio | weight gradients |",
             "|---|---:|---:|---:|---:|"]
    for cell in MUST_KEEP:
        for n, t, d, m in TRAIN_SIZES:
            peak, keep, grads = measure(cell, n, t, d, m)
            lines.append(f"| train {cell} ({n},{t},{d},{m}) | {_size(peak)} | {_size(keep)} | "
                         f"{peak / keep:.2f} | {_size(grads)} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
