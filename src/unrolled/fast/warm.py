"""Compile the fast kernels before their first call: ``python -m unrolled.fast.warm``.

numba compiles each kernel at its first call, for the argument types of that call, and
caches the machine code on disk (see ``unrolled.fast``). This runs the calls a model makes
-- inference and a training step of each built-in cell, with and without masks, dropout
and the folded product (row-major and unit-major) -- on tiny inputs, so that the cache
holds them before any real work starts: after an install (the first ``predict`` then
costs milliseconds), or before a test run's parallel workers start (each would otherwise
compile the same kernels).

``--part I/N`` warms the I-th of N shares of the cells (0-based), so that N processes
compile in parallel. A kernel that a later call needs and this did not reach is compiled
at that call, as without warming: warming changes no number, only when compiling happens.
"""
import argparse
import contextlib
import sys

import numpy as np

CELLS = ("SimpleRNN", "LSTM", "GRU", "GRU-reset-before")


def _layer(name, **options):
    from .. import layers
    if name == "GRU-reset-before":
        return layers.GRU(3, reset_after=False, **options)
    return getattr(layers, name)(3, **options)


@contextlib.contextmanager
def _fold(on):
    """The folded product ``[x_t | h] @ [W; U]`` on (or off) for every size; ``on`` =
    "unit-major": folded, and the LSTM's inference in its unit-major layout."""
    from . import cells
    classes = (cells.SimpleRNNSequence, cells.LSTMSequence)
    saved = [c.__dict__.get("fold_min_macs") for c in classes]
    unit_major = cells.LSTMSequence.unit_major_rows
    for c in classes:
        c.fold_min_macs = 0 if on else 2 ** 62
    cells.LSTMSequence.unit_major_rows = 1 if on == "unit-major" else 2 ** 62
    try:
        yield
    finally:
        for c, value in zip(classes, saved):
            c.fold_min_macs = value
        cells.LSTMSequence.unit_major_rows = unit_major


def warm(name):
    """Run ``name``'s kernels once: predict and a training step, masked and not, with and
    without dropout and the folded product (both layouts), returning sequences and the last
    step."""
    from .. import Input, Sequential
    from . import kernels
    if not kernels.enabled():
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 2)).astype("float32")
    y = rng.standard_normal((4, 1)).astype("float32")
    masked = x.copy()
    masked[0, 3:] = 0.0
    for fold in (False, True, "unit-major"):
        with _fold(fold):
            for options in ({}, {"dropout": 0.2, "recurrent_dropout": 0.2}):
                from ..layers import Dense, Masking
                for data, front in ((x, []), (masked, [Masking()])):
                    model = Sequential([Input((5, 2)), *front,
                                        _layer(name, return_sequences=True, **options),
                                        _layer(name, **options), Dense(1)])
                    model.compile(optimizer="sgd", loss="mse")
                    model.predict(data, verbose=0)
                    model.train_on_batch(data, y)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m unrolled.fast.warm",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="0/1", help="I/N: warm the I-th of N shares")
    args = parser.parse_args(argv)
    try:
        i, n = (int(v) for v in args.part.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        parser.error(f"--part expects I/N with 0 <= I < N; received {args.part!r}")
    for name in CELLS[i::n]:
        warm(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
