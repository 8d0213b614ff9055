"""Scoring a large array in worker processes with dask: ``score_with_dask(model, x, chunks)``.

A model pickles as plain NumPy state (its weights, its layer options, activation functions
by name), so dask ships one copy to each worker and every worker runs ``predict`` on its
blocks of rows. Example, on a local cluster of two processes::

    from dask.distributed import Client, LocalCluster
    from unrolled.interop.dask_scoring import score_with_dask

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, \\
            Client(cluster):
        y = score_with_dask(model, x, chunks=10_000)      # a NumPy array, like predict(x)

dask is imported inside the functions (``pip install dask distributed``).
"""
import numpy as np


def _predict_block(block, model, batch_size):
    return model.predict(block, batch_size=batch_size, verbose=0)


def score_with_dask(model, x, chunks, batch_size=256, compute=True):
    """``model.predict(x)`` computed block by block (``chunks`` rows each) with dask.

    ``x`` is a NumPy or dask array of shape ``(samples, ...)`` for a single-input,
    single-output model. Returns a NumPy array (or, with ``compute=False``, the lazy dask
    array). Runs on the active dask client if there is one (e.g. a ``LocalCluster``).
    """
    from ..optional import require
    dask = require("dask", "score_with_dask")
    da = require("dask.array", "score_with_dask")

    if getattr(model, "_multi_input", False) or getattr(model, "_multi_output", False):
        raise ValueError("score_with_dask takes a model with one input and one output.")
    arr = x if isinstance(x, da.Array) else da.from_array(np.asarray(x), chunks=-1)
    arr = arr.rechunk((chunks,) + tuple(-1 for _ in arr.shape[1:]))
    probe = model.predict(np.asarray(arr[:1].compute()), verbose=0)   # output shape and dtype
    out_chunks = (arr.chunks[0],) + tuple((d,) for d in probe.shape[1:])
    drop = list(range(probe.ndim, arr.ndim))                 # input axes the output lacks
    new = list(range(arr.ndim, probe.ndim))                  # output axes the input lacks
    model_ref = dask.delayed(model, pure=True, traverse=False)
    y = da.map_blocks(_predict_block, arr, model_ref, batch_size, dtype=probe.dtype,
                      chunks=out_chunks, drop_axis=drop or None, new_axis=new or None,
                      meta=np.empty((0,) * probe.ndim, probe.dtype))
    return y.compute() if compute else y
