"""What ``fit``, ``evaluate`` and the ``*_on_batch`` calls check before a step: the inputs
and targets (``check_xy``), the sample weights (``check_sample_weight``), and that the model
holds nothing training would ignore (``refuse_training_only``). Each fails with a message
that says what was expected."""
import numpy as np


def check_xy(model, x, y, what="x", allow_empty=False):
    xs = model._standardize_inputs(x)
    n = xs[0].shape[0]
    if n == 0 and not allow_empty:
        raise ValueError(f"Received an empty batch: {what} has 0 samples.")
    if y is None:
        raise ValueError(
            f"Targets are missing: {what} came without y. Training and evaluation compare the "
            "model's output with y, e.g. model.fit(x, y)."
        )
    if model._multi_output:
        raise ValueError(
            "Training a model with several outputs is not supported yet; build one "
            "model per output or concatenate the outputs."
        )
    y_arr = np.asarray(y)
    if y_arr.dtype.kind not in "biuf":
        raise TypeError(f"Targets y must be numeric; received dtype {y_arr.dtype}.")
    if y_arr.shape[0] != n:
        raise ValueError(
            f"Data cardinality is ambiguous: x has {n} samples but y has {y_arr.shape[0]}. "
            "Make sure all arrays contain the same number of samples."
        )
    if y_arr.dtype.kind == "f" and not np.all(np.isfinite(y_arr)):
        raise ValueError("Targets y contain NaN or Inf; clean or mask them before training.")
    out_shape = model.outputs[0].shape
    if not model._loss_sparse and y_arr.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
        y_arr = y_arr[..., None]      # (N,) for a (N, 1) output, as Keras's losses expand it
    if not model._loss_sparse and (y_arr.ndim != len(out_shape) or any(
            e is not None and e != s for e, s in zip(out_shape[1:], y_arr.shape[1:]))):
        raise ValueError(
            f"Targets y have shape {y_arr.shape}, but the model's output has shape "
            f"{out_shape}: the target width must match the output (one column per output unit)."
        )
    ys = y_arr.astype(model.outputs[0].dtype, copy=False) if y_arr.dtype.kind == "f" or not model._loss_sparse else y_arr
    return xs, ys


def check_sample_weight(sample_weight, n, what="sample_weight"):
    """``sample_weight`` as an array with one weight (or row of weights) per sample, finite:
    a NaN weight would turn the loss into NaN without a word."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"`{what}` must be numeric; received an array of dtype {sw.dtype}.")
    if sw.ndim == 0 or sw.shape[0] != n:
        raise ValueError(f"Data cardinality is ambiguous: x has {n} samples but `{what}` has "
                         f"{'none' if sw.ndim == 0 else sw.shape[0]}. Make sure all arrays "
                         "contain the same number of samples.")
    if sw.dtype.kind == "f" and not np.all(np.isfinite(sw)):
        raise ValueError(f"`{what}` contains NaN or Inf: the loss would be NaN. Give every "
                         "sample a finite weight (0 leaves a sample out).")
    return sw


def refuse_training_only(model, what):
    """Training would ignore what a file holds and unrolled does not implement (an
    ``activity_regularizer``, an ``OrthogonalRegularizer``): refuse, naming it."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        found = getattr(layer, "_training_only", None)
        if found:
            raise NotImplementedError(
                f"{what}: layer '{layer.name}' has {', '.join(sorted(found))} from the file it "
                "was loaded from; unrolled implements the L1/L2/L1L2 weight regularizers and "
                "Keras's constraints, not these, and would ignore them. Predictions are "
                "unaffected; to train, rebuild the layer without them (or delete "
                "layer._training_only to train without them knowingly).")
        stack.extend(layer._sublayers())
