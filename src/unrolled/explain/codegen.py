"""``to_numpy_code(model)``: the model as a standalone NumPy program, one loop per layer.

The seed notebook recomputes a SimpleRNN by hand in five lines. This writes those lines
for any supported model: one function per layer, each recurrent layer the notebook's
loop over time around the lines of one step that its cell's registry entry declares
(``step_code``: SimpleRNN, LSTM, GRU, and any cell registered with it), and ``predict(x)``
calling them in graph order. The result imports NumPy alone; its weights are array literals (the shortest
decimals that give back the exact float32 values) or an ``.npz`` file beside it, read
with ``allow_pickle=False``. Nothing is run here: the text is returned (and written).
"""
import keyword
import re
import textwrap

import numpy as np

from ..layers import registry
from .codegen_layers import ACTIVATIONS, activation_source, coded, unsupported_reason, writer_of

# Besides the recurrent layers whose cells give step code (``codegen_layers.coded()``):
SUPPORTED = ("Bidirectional", "Dense", "Embedding", "TimeDistributed", "Activation", "Flatten", "Dropout",
             "RepeatVector", "Reshape", "Concatenate", "Add", "ReLU", "LeakyReLU", "ELU", "PReLU",
             "Softmax", "Conv1D(groups=1)", "MaxPooling1D", "AveragePooling1D",
             "GlobalMaxPooling1D", "GlobalAveragePooling1D", "LayerNormalization",
             "BatchNormalization", "UnitNormalization", "GaussianNoise", "GaussianDropout",
             "SpatialDropout1D", "ActivityRegularization", "Permute", "ZeroPadding1D",
             "Cropping1D", "UpSampling1D", "Attention", "AdditiveAttention")
_RESERVED = {"np", "os", "W", "predict", "WEIGHTS_FILE", "MODEL_NAME", "INPUTS", "x", "argparse"} | set(ACTIVATIONS)


def _float_text(values, dtype):
    """Shortest decimal text of each value that reads back bit-exactly in ``dtype``."""
    out = []
    for v in values:
        if np.isnan(v):
            out.append("np.nan")
        elif np.isinf(v):
            out.append("np.inf" if v > 0 else "-np.inf")
        else:
            s = str(dtype.type(v))
            if np.array(float(s), dtype).tobytes() != np.array(v, dtype).tobytes():
                s = repr(float(v))               # exact: every float32 is a float64
            out.append(s)
    return out


def array_literal(a):
    """``np.array([...], dtype=np.float32)`` source for ``a``, wrapped to 88 columns."""
    a = np.asarray(a)
    if a.ndim == 0:                                  # a scalar weight (Attention's scale)
        text = _float_text([a], a.dtype)[0] if a.dtype.kind == "f" else str(a)
        return f"np.array({text}, dtype=np.{a.dtype.name})"
    if a.size == 0:
        return f"np.zeros({a.shape}, dtype=np.{a.dtype.name})"
    if a.dtype.kind == "f":
        text = np.array(_float_text(a.ravel(), a.dtype), dtype=object).reshape(a.shape)
    else:
        text = np.array([str(v) for v in a.ravel()], dtype=object).reshape(a.shape)

    def nest(t, col):
        if t.ndim == 1:
            pad = " " * (col + 1)
            body = textwrap.fill(", ".join(t), width=88, initial_indent=pad, subsequent_indent=pad,
                                 break_long_words=False, break_on_hyphens=False)
            return "[" + body[col + 1:] + "]"
        return "[" + (",\n" + " " * (col + 1)).join(nest(s, col + 1) for s in t) + "]"

    flat = nest(text, 0)
    if "\n" not in flat and len(flat) < 60:
        return f"np.array({flat}, dtype=np.{a.dtype.name})"
    return f"np.array(\n    {nest(text, 4)},\n    dtype=np.{a.dtype.name})"


class Namer:
    """Python identifiers from layer names: unique, not keywords, not the program's own names."""

    def __init__(self):
        self.used = set(_RESERVED)

    def __call__(self, name):
        base = re.sub(r"[^0-9A-Za-z_]", "_", name)      # ASCII identifiers only
        if not base or base[0].isdigit() or keyword.iskeyword(base):
            base = "layer_" + base
        out, k = base, 1
        while out in self.used:
            out, k = f"{base}_{k}", k + 1
        self.used.add(out)
        return out


def _check_supported(model):
    problems = []
    for node in model._nodes:
        reason = unsupported_reason(node.layer, node)
        if reason:
            problems.append(f"layer '{node.layer.name}' ({type(node.layer).__name__}: {reason})")
    if problems:
        rnn = coded()
        cells = "|".join(f"{registry.of_layer(name).cell_name}" for name in rnn)
        raise ValueError("to_numpy_code cannot write code for " + "; ".join(problems)
                         + f". It supports {', '.join(rnn + (f'RNN({cells})',) + SUPPORTED)}.")


def to_numpy_code(model, weights="embed", path=None):
    """The Python source of a NumPy-only program whose ``predict(x)`` equals ``model.predict(x)``.

    ``weights="embed"`` writes the weights into the source as array literals;
    ``weights="npz"`` saves them to ``<path stem>.npz`` beside the program (``path``
    required), which reads them back with ``np.load(..., allow_pickle=False)``. With
    ``path`` the source is also written there. Layers it cannot translate (masks,
    stateful layers, stacked cells, ...) raise a ValueError naming each one.
    """
    import os

    from ..layers.base import Layer

    if not (isinstance(model, Layer) and hasattr(model, "_nodes")):
        raise TypeError(f"to_numpy_code expects an unrolled Model or Sequential; received "
                        f"{type(model).__name__}.")
    if not model.built or not model._nodes:
        raise ValueError(f"Model '{model.name}' is not built: give it an Input or call it on "
                         "data first, so that its input shape is known.")
    if weights not in ("embed", "npz"):
        raise ValueError(f"weights must be 'embed' or 'npz'; received {weights!r}.")
    if weights == "npz" and path is None:
        raise ValueError("weights='npz' needs path=: the program is written there and its "
                         "weights beside it as <stem>.npz.")
    _check_supported(model)

    namer = Namer()
    fn_names, blocks, acts, arrays = {}, [], set(), {}
    for node in model._nodes:                                 # one function per layer
        layer = node.layer
        if id(layer) in fn_names:
            continue
        fn_names[id(layer)] = fn = namer(layer.name)
        src, used_acts, used_weights = writer_of(layer)(layer, fn, namer, node)
        blocks.append(src)
        acts |= used_acts
        arrays.update(used_weights)

    lines = _predict_source(model, fn_names, namer)
    stem = None if path is None else os.path.splitext(os.path.basename(os.fspath(path)))[0]
    source = "\n".join([
        _header(model, weights, stem),
        _weights_source(arrays, weights, stem),
        "\n# --- activations " + "-" * 71,
        *[activation_source(a) for a in sorted(acts)],
        "\n# --- layers, in the order predict() calls them " + "-" * 41,
        *blocks,
        "\n# --- the model " + "-" * 72,
        lines,
        _MAIN.replace("NINPUTS", str(len(model.inputs))),
    ])
    if path is not None:
        from ..io.atomic import atomic_write

        path = os.fspath(path)
        if weights == "npz":
            npz = os.path.join(os.path.dirname(os.path.abspath(path)), stem + ".npz")
            import io
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            with atomic_write(npz) as f:
                f.write(buf.getvalue())
        with atomic_write(path) as f:
            f.write(source.encode())
    return source


def _header(model, weights, stem):
    # Names come from the model (perhaps from someone's file): they enter the program only
    # as repr() literals, never inside the docstring or as code.
    inputs = [(t.node.layer.name, tuple(t.shape)) for t in model.inputs]
    imports = "import os\n\nimport numpy as np" if weights == "npz" else "import numpy as np"
    return ('"""A model in plain NumPy, written by unrolled.explain.to_numpy_code.\n\n'
            "predict(x) gives what model.predict(x) gives (float32); MODEL_NAME and INPUTS\n"
            "(name and shape of each input) say which model. Every recurrent layer is one\n"
            "loop over time, as in the notebook:\n\n"
            "    for t in range(T):\n        h = tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias)\n\n"
            "Run it: python this_file.py x.npy [--out y.npy]\n"
            f'"""\n{imports}\n\nMODEL_NAME = {model.name!r}\nINPUTS = {inputs!r}\n')


def _weights_source(arrays, weights, stem):
    head = "# --- weights: W['<layer>.<weight>'] in Keras's layouts " + "-" * 32
    if weights == "npz":
        return (f"{head}\nWEIGHTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "
                f"{stem + '.npz'!r})\nwith np.load(WEIGHTS_FILE, allow_pickle=False) as _f:\n"
                "    W = {k: _f[k] for k in _f.files}\n")
    body = [f"W[{k!r}] = {array_literal(v)}" for k, v in arrays.items()]
    return "\n".join([head, "W = {}"] + body) + "\n"


def _predict_source(model, fn_names, namer):
    names = {}
    out = ["def predict(x):",
           f'    """The model\'s output{"s" if len(model.outputs) > 1 else ""} for x '
           f'({"a list of " + str(len(model.inputs)) + " arrays" if len(model.inputs) > 1 else "an array"}'
           ' with a batch axis first)."""']
    ins = []
    for t in model.inputs:
        names[id(t)] = namer(t.node.layer.name)
        ins.append(names[id(t)])
    dtypes = [np.dtype(t.dtype).name for t in model.inputs]
    if len(ins) == 1:
        out.append(f"    {ins[0]} = np.asarray(x, dtype=np.{dtypes[0]})")
    else:
        out.append(f"    {', '.join(ins)} = x")
        out += [f"    {n} = np.asarray({n}, dtype=np.{d})" for n, d in zip(ins, dtypes)]
    for node in model._nodes:
        fn = fn_names[id(node.layer)]
        args = [names[id(t)] for t in (node.inputs if isinstance(node.inputs, list) else [node.inputs])]
        call = f"{fn}([{', '.join(args)}])" if isinstance(node.inputs, list) else f"{fn}({args[0]})"
        if node.states:
            call = call[:-1] + f", initial_state=[{', '.join(names[id(t)] for t in node.states)}])"
        outs = []
        for t in node.outputs:
            names[id(t)] = namer(f"{fn}_out" if len(node.outputs) == 1 else f"{fn}_out{t.index}")
            outs.append(names[id(t)])
        out.append(f"    {', '.join(outs)} = {call}")
    res = [names[id(t)] for t in model.outputs]
    out.append(f"    return {'[' + ', '.join(res) + ']' if model._multi_output else res[0]}")
    return "\n".join(out) + "\n"


_MAIN = '''
if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the model on inputs saved with np.save.")
    parser.add_argument("inputs", nargs=NINPUTS, help=".npy file(s), one per model input")
    parser.add_argument("--out", help="save the prediction here (.npy; .npz for several outputs)")
    args = parser.parse_args()
    xs = [np.load(p, allow_pickle=False) for p in args.inputs]
    y = predict(xs if len(xs) > 1 else xs[0])
    if args.out is None:
        print(y)
    elif isinstance(y, list):
        np.savez(args.out, *y)
    else:
        np.save(args.out, y)
'''
