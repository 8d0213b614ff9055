"""The benchmark workloads of the performance issue: (kind, cell, N, T, D, M, K)."""

NOTEBOOK = ("predict", "SimpleRNN", 1, 10, 3, 5, 2)

INFERENCE_SIZES = [(32, 50, 16, 64), (256, 100, 32, 256), (1024, 100, 64, 512)]
TRAIN_SIZES = [(1, 10, 3, 5), (32, 50, 16, 64), (256, 100, 32, 256)]
CELLS = ["SimpleRNN", "LSTM", "GRU"]


def all_workloads(smoke=False):
    """Every workload; ``smoke``: one of each kind (notebook, infer, train) at the smallest
    sizes, enough to run every path of the harness in each framework's process."""
    if smoke:
        return [NOTEBOOK, ("infer", "LSTM", *INFERENCE_SIZES[0], 2),
                ("train", "GRU", *TRAIN_SIZES[0], 2)]
    out = [NOTEBOOK]
    inf, tr = INFERENCE_SIZES, TRAIN_SIZES
    for cell in CELLS:
        for n, t, d, m in inf:
            out.append(("infer", cell, n, t, d, m, 2))
    for cell in CELLS:
        for n, t, d, m in tr:
            out.append(("train", cell, n, t, d, m, 2))
    return out


def name(w):
    kind, cell, n, t, d, m, k = w
    if w == NOTEBOOK:
        return "notebook predict (1,10,3,5)"
    return f"{kind} {cell} ({n},{t},{d},{m})"
