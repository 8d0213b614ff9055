"""The file subcommands of the ``unrolled`` CLI: ``inspect``, ``convert`` and ``predict``.

Formats by file name (``convert IN OUT``):

============================  =====  ======  =================================================
file                          IN     OUT     notes
============================  =====  ======  =================================================
``.keras``                    yes    yes     Keras 3 archive (config + weights)
``.h5`` / ``.hdf5``           yes    yes     legacy Keras model (config + weights)
``.unrolled.npz``             yes    yes     native, NumPy only
``.weights.h5``               yes    yes     weights only: IN needs ``--model`` for the architecture
``.weights.npz``              yes    yes     native weights only: IN needs ``--model``
``.pt`` / ``.pth``            yes    yes     needs torch. IN: a ``state_dict`` of one module or of
                                             a model (embedding, recurrent module, Linear head:
                                             ``interop.torch_state``; ``--kind``,
                                             ``--nonlinearity``, ``--head-on`` where the keys
                                             can't tell), or a file this OUT wrote. OUT: the
                                             model (Keras config + ``to_torch`` state_dict,
                                             ``interop.torch_checkpoint``)
``.onnx``                     no     yes     needs onnx
============================  =====  ======  =================================================
"""
import io
import os

import numpy as np

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".unrolled.npz")
WEIGHT_SUFFIXES = (".weights.h5", ".weights.npz")
TORCH_SUFFIXES = (".pt", ".pth")


class UsageError(ValueError):
    """A command given the wrong kind of file or a missing option: the CLI prints it on one
    line and exits with code 2, as for argparse's own usage errors."""


def _is(path, suffixes):
    return os.fspath(path).lower().endswith(suffixes)


def load_any(path, model_path=None, kind=None, nonlinearity="tanh", head_on=None):
    """A model from any input format of the table above."""
    from ..models import load_model
    from ..saving.model_files import load_weights

    torch_options = [f"--{k}" for k, v in (("kind", kind), ("head-on", head_on),
                                             ("nonlinearity", nonlinearity)) if v not in (None, "tanh")]
    if torch_options and not _is(path, TORCH_SUFFIXES):
        raise UsageError(f"{', '.join(torch_options)} apply to PyTorch state files (.pt/.pth); "
                         f"{path} is not one.")
    if model_path is not None and not _is(path, WEIGHT_SUFFIXES):
        raise UsageError(f"--model applies to weights-only files (.weights.h5, .weights.npz); "
                         f"{path} is not one.")
    if _is(path, WEIGHT_SUFFIXES):
        if model_path is None:
            raise UsageError(f"{path} holds weights only: pass --model FILE (a .keras, .h5 or "
                             ".unrolled.npz with the same architecture).")
        model = load_model(model_path)
        load_weights(model, path)
        return model
    if _is(path, TORCH_SUFFIXES):
        from .torch_checkpoint import load_torch_model
        return load_torch_model(path, kind=kind, nonlinearity=nonlinearity, head_on=head_on)
    if _is(path, MODEL_SUFFIXES):
        return load_model(path)
    raise UsageError(f"Cannot read {path}: expected a name ending in "
                     f"{', '.join(MODEL_SUFFIXES + WEIGHT_SUFFIXES + TORCH_SUFFIXES)}.")


def save_any(model, path):
    """Write ``model`` in the output format named by ``path``'s suffix."""
    from ..models import save_model
    from ..saving.model_files import save_weights

    if _is(path, WEIGHT_SUFFIXES):
        save_weights(model, path)
    elif _is(path, MODEL_SUFFIXES):
        save_model(model, path)
    elif _is(path, (".onnx",)):
        from .onnx_export import to_onnx
        to_onnx(model, path)
    elif _is(path, TORCH_SUFFIXES):
        from .torch_checkpoint import save_torch_model
        save_torch_model(model, path)
    else:
        raise UsageError(f"Cannot write {path}: expected a name ending in .keras, .h5, "
                         ".unrolled.npz, .weights.h5, .weights.npz, .pt or .onnx.")


def convert(src, dst, model_path=None, kind=None, nonlinearity="tanh", head_on=None):
    model = load_any(src, model_path, kind, nonlinearity, head_on)
    save_any(model, dst)
    print(f"{src} -> {dst}: {type(model).__name__} '{model.name}', "
          f"{model.count_params():,} parameters")
    return 0


def _stats_row(name, a):
    a = np.asarray(a)
    if a.size == 0:
        return f"{name:<48} {str(a.shape):<14} {str(a.dtype):<8} (empty)"
    a64 = a.astype(np.float64)
    return (f"{name:<48} {str(a.shape):<14} {str(a.dtype):<8} {a64.min():>11.4g} "
            f"{a64.max():>11.4g} {a64.mean():>11.4g}")


def _raw_arrays(path):
    """(name, array) of a weights-only file, read with the same safety checks."""
    from ..io.h5_sandbox import open_h5
    from ..io.h5_snapshot import H5Dataset
    from ..io.safety import SafeZip, read_dataset, read_file, read_npy

    if _is(path, TORCH_SUFFIXES):
        from .torch import load_torch_state
        return list(load_torch_state(path).items())
    data = read_file(path)
    if _is(path, (".npz",)):
        archive = SafeZip(data, path)
        return [(n[:-4], read_npy(archive.read(n), n, path)) for n in archive.names()
                if n.endswith(".npy")]
    out = []
    with open_h5(data, path) as f:
        def visit(name, obj):
            if isinstance(obj, H5Dataset):
                out.append((name, read_dataset(obj, None, name, path, len(data))))
        f.visititems(visit)
    return out


def _printable(text):
    """``text`` with control characters (ANSI escapes, carriage returns) shown as escapes:
    names come from files, and a file must not drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _torch_model_file(path):
    """Whether ``path`` is a ``.pt`` holding a whole model (``torch_checkpoint``)."""
    if not _is(path, TORCH_SUFFIXES):
        return False
    from .torch import torch_load
    from .torch_checkpoint import is_checkpoint
    return is_checkpoint(torch_load(path))


def _legacy_weights_only(path):
    """Whether ``path`` is a legacy ``.h5`` of weights alone (Keras 2's ``save_weights``):
    no ``model_config`` attribute."""
    if not _is(path, (".h5", ".hdf5")):
        return False
    from ..io.h5_sandbox import open_h5
    from ..io.safety import read_file
    with open_h5(read_file(path), path) as f:
        return "model_config" not in f.attrs and ("layer_names" in f.attrs
                                                  or "layer_names0" in f.attrs)


def inspect(path):
    header = f"{'weight':<48} {'shape':<14} {'dtype':<8} {'min':>11} {'max':>11} {'mean':>11}"
    model_file = _is(path, MODEL_SUFFIXES) and not _is(path, WEIGHT_SUFFIXES) \
        and not _legacy_weights_only(path)
    if model_file or _torch_model_file(path):
        from ..saving.graph import weight_groups
        from ..models import load_model

        model = load_model(path) if model_file else load_any(path)
        print(_printable(f"{path}: {type(model).__name__} '{model.name}'"))
        model.summary(print_fn=lambda line: print(_printable(line)))
        print(header)
        for group, variables in weight_groups(model, model.layers):
            for var in variables:
                print(_printable(_stats_row(f"{var.path}", var.value)))
        return 0
    arrays = _raw_arrays(path)
    print(_printable(f"{path}: {len(arrays)} arrays (weights only)"))
    print(header)
    for name, a in arrays:
        print(_printable(_stats_row(name, a)))
    if _is(path, TORCH_SUFFIXES):
        print(_printable(_state_reading(dict(arrays))))
    return 0


def _state_reading(state):
    """How ``from_torch_state`` reads a state, or why it cannot without options."""
    from .torch_state import RECURRENT, plan

    try:
        entries = plan(state)
    except ValueError as e:
        return f"as a model: not without options: {' '.join(str(e).split())}"
    parts = []
    for name, kind, sub in entries:
        label = f"{name}: " if name else ""
        if kind in RECURRENT:
            n = len([k for k in sub if k.startswith("weight_ih_l") and "reverse" not in k])
            bidi = ", bidirectional" if "weight_ih_l0_reverse" in sub else ""
            parts.append(f"{label}{kind} {sub['weight_ih_l0'].shape[1]} -> "
                         f"{sub['weight_hh_l0'].shape[1]} ({n} layer(s){bidi})")
        else:
            parts.append(f"{label}{kind} {tuple(sub['weight'].shape)}")
    head = " (head on the last step; --head-on final or sequence otherwise)" \
        if len(entries) > 1 and entries[-1][1] == "Linear" else ""
    return "as a model: " + " -> ".join(parts) + head


def read_data(path):
    """Input data from ``.npy`` (no pickle) or ``.csv`` (comma-separated numbers)."""
    from ..io.safety import read_file

    if _is(path, (".npy",)):
        from ..io.safety import read_npy
        return read_npy(read_file(path), os.path.basename(path), path)
    if _is(path, (".csv",)):
        return np.loadtxt(path, delimiter=",", ndmin=2)
    raise UsageError(f"DATA must be a .npy or .csv file; received {path}.")


def predict(model_path, data_path, out=None, batch_size=32, kind=None, nonlinearity="tanh",
            head_on=None, model=None):
    """``unrolled predict FILE DATA``: the model's outputs for DATA, printed or written to
    ``out`` (``.npy``; any other name, ``/dev/stdout`` included, gets CSV rows).
    ``model``: the architecture file for a weights-only FILE. DATA is checked against the
    model's input shape before anything runs."""
    net = load_any(model_path, model, kind=kind, nonlinearity=nonlinearity, head_on=head_on)
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise ValueError(f"predict runs models with one input and one output; "
                         f"'{net.name}' has {len(net.inputs)} inputs and {len(net.outputs)} "
                         "outputs. Use model.predict in Python.")
    x = _shaped(read_data(data_path), net.inputs[0], data_path)
    y = net.predict(x, batch_size=batch_size, verbose=0)
    if out is None:
        with np.printoptions(precision=6, suppress=True, threshold=np.inf):
            print(y)
    elif _is(out, (".npy",)):
        from ..io.atomic import atomic_write
        buf = io.BytesIO()
        np.save(buf, y, allow_pickle=False)
        with atomic_write(out) as f:
            f.write(buf.getvalue())
    else:
        from ..io.atomic import atomic_write
        buf = io.StringIO()
        np.savetxt(buf, y.reshape(y.shape[0], -1), delimiter=",", fmt="%.9g")
        with atomic_write(out, "w") as f:
            f.write(buf.getvalue())
    return 0


def _shaped(x, model_input, data_path):
    """``x`` as the model's input: the same rank and sizes where the model fixes them. A
    CSV (2-D) for a sequence model holds one sample a row, its T*F values step by step."""
    shape = tuple(model_input.shape)
    expected = "(N, " + ", ".join("any" if d is None else str(d) for d in shape[1:]) + ")"
    fixed = [d for d in shape[1:] if d is not None]
    if x.ndim == 2 and len(shape) > 2 and len(fixed) == len(shape) - 1:
        size = int(np.prod(fixed))
        if x.shape[1] != size:
            raise ValueError(f"DATA {data_path} has shape {x.shape}; the model expects "
                             f"{expected}, or rows of {size} values ({' x '.join(map(str, fixed))})"
                             " in a 2-D file.")
        x = x.reshape((x.shape[0],) + shape[1:])
    if x.ndim != len(shape) or any(d is not None and d != n
                                   for d, n in zip(shape[1:], x.shape[1:])):
        raise ValueError(f"DATA {data_path} has shape {x.shape}; the model expects {expected}"
                         " (N samples).")
    if "int" in str(model_input.dtype):
        x = x.astype(model_input.dtype)
    return x
