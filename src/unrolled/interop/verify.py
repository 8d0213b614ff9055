"""``unrolled verify FILE``: run a file in its own framework and in unrolled, side by side.

For ``.keras``/``.h5`` files both run the same random input in unrolled and in the Keras
that wrote the file (tf_keras for Keras 2 files, when installed; else Keras 3); every layer
output is compared (max absolute and relative difference), and sequence outputs also per
time step. For PyTorch state files (``.pt``/``.pth``, torch installed) the module is rebuilt
in torch from the state's keys and shapes and compared per time step. The exit status is
1 when a difference exceeds ``tol``.
"""
import os

import numpy as np


def random_inputs(model, batch, timesteps, seed):
    """One random array per model input; integer inputs get ids below the vocabulary size."""
    rng = np.random.default_rng(seed)
    vocab = min((l.input_dim for l in model.layers if type(l).__name__ == "Embedding"), default=2)
    arrays = []
    for t in model.inputs:
        shape = (batch,) + tuple(timesteps if d is None else d for d in t.shape[1:])
        if "int" in str(t.dtype):
            arrays.append(rng.integers(0, vocab, size=shape).astype(t.dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype("float32"))
    return arrays


def _report(label, ours, theirs, tol, per_step):
    diff = np.abs(ours.astype(np.float64) - theirs)
    scale = max(float(np.abs(theirs).max()), 1e-12)
    worst = float(diff.max()) if diff.size else 0.0
    print(f"{label:<40} {str(ours.shape):<16} max|diff| {worst:.3e}  relative {worst / scale:.3e}"
          f"  {'ok' if worst <= tol else 'MISMATCH'}")
    if per_step and ours.ndim == 3:
        steps = diff.max(axis=(0, 2))
        print("    per step: " + " ".join(f"t{t}={d:.1e}" for t, d in enumerate(steps)))
    return worst <= tol


def _as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _note_keras2_hard_sigmoid(model):
    from ..saving.graph import model_config
    from ..saving.serialize import KERAS2_HARD_SIGMOID, activation_users

    users = activation_users(model_config(model), KERAS2_HARD_SIGMOID)
    if users:
        print(f"note: {', '.join(map(repr, users))} use Keras 2's hard_sigmoid, clip(0.2*x + 0.5, "
              "0, 1), as the Keras 2 that wrote this file did; Keras 3 computes clip(x/6 + 0.5, "
              "0, 1) for it, so Keras 3 differs there.")


def writer_version(path):
    """The ``keras_version`` a ``.keras`` (metadata.json) or legacy ``.h5`` (root or
    model_weights attribute) file was written by, as text, or None when it holds none."""
    from ..io.h5_sandbox import open_h5
    from ..saving.keras_format import parse_json
    from ..io.safety import MAX_JSON_BYTES, SafeZip, read_attr, read_file

    data = read_file(path)
    if os.fspath(path).lower().endswith(".keras"):
        archive = SafeZip(data, path)
        if not archive.has("metadata.json"):
            return None
        meta = parse_json(archive.read("metadata.json", MAX_JSON_BYTES), "metadata.json", path)
        version = meta.get("keras_version") if isinstance(meta, dict) else None
    else:
        with open_h5(data, path) as f:
            version = read_attr(f, "keras_version")
            if version is None and "model_weights" in f:
                version = read_attr(f["model_weights"], "keras_version")
    if isinstance(version, bytes):
        version = version.decode("latin-1")
    return version if isinstance(version, str) else None


def reference_keras(path):
    """The Keras to compare a file with, and a line saying which and why: tf_keras (Keras 2
    on TensorFlow) for a file Keras 2 wrote -- its ``keras_version`` below 3, or a legacy
    ``.h5`` with none, as unrolled reads it -- when installed, else Keras 3."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    version = writer_version(path)
    legacy = not os.fspath(path).lower().endswith(".keras")
    major = version.strip().split(".")[0] if version else None
    keras2 = (major.isdigit() and int(major) < 3) if major else legacy
    written = f"written by Keras {version}" if version else "no keras_version in the file"
    from ..optional import import_quietly
    if keras2:
        try:
            tf_keras = import_quietly("tf_keras")
        except ImportError:
            keras = import_quietly("keras")
            return keras, (f"Keras {keras.__version__} ({written}: Keras 2's reference, "
                           "tf_keras, is not installed -- pip install tf_keras; Keras 3 may "
                           "refuse the file or compute hard_sigmoid otherwise)")
        return tf_keras, f"tf_keras {tf_keras.__version__} ({written}: Keras 2)"
    keras = import_quietly("keras")
    return keras, f"Keras {keras.__version__} ({written})"


def verify_keras(path, tol=1e-5, timesteps=10, batch=4, seed=0):
    from ..saving.nested_models import is_model
    from ..models import Model, load_model

    ours = load_model(path)
    keras, which = reference_keras(path)
    print(f"{path}: compared with {which}")
    try:
        theirs = keras.models.load_model(path, compile=False)
    except Exception as e:                 # Keras's own errors: a file it cannot read
        raise ValueError(f"cannot verify {path}: {which.split(' (')[0]} does not load it "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         + ("; install tf_keras (pip install tf_keras) to compare it with the "
                            "Keras 2 that wrote it" if "pip install tf_keras" in which else "")
                         ) from None
    xs = random_inputs(ours, batch, timesteps, seed)
    own_nodes = {id(n) for n in ours._nodes}
    our_t, their_t, labels = [], [], []
    for node in ours._nodes:
        layer = node.layer
        if sum(id(n) in own_nodes for n in layer._inbound_nodes) != 1:
            continue                                       # shared layer: final outputs only
        if is_model(layer):            # a nested model: Keras's `output` is its own graph's
            continue                                       # final outputs only
        try:
            klayer = theirs.get_layer(layer.name)
            kouts = _as_list(klayer.output)
        except (ValueError, AttributeError):
            continue
        if len(kouts) != len(node.outputs):
            continue
        for k, (a, b) in enumerate(zip(node.outputs, kouts)):
            our_t.append(a)
            their_t.append(b)
            labels.append(layer.name + (f"[{k}]" if len(kouts) > 1 else ""))
    arg = xs if len(xs) > 1 else xs[0]
    ok = True
    print(f"{path}: {len(xs)} random input(s) {[x.shape for x in xs]}, seed {seed}")
    _note_keras2_hard_sigmoid(ours)
    if our_t:
        a = _as_list(Model(ours.inputs, our_t).predict(arg, verbose=0))
        b = _as_list(keras.Model(theirs.inputs, their_t).predict(arg, verbose=0))
        for label, p, q in zip(labels, a, b):
            ok &= _report(label, p, np.asarray(q), tol, per_step=True)
    for layer in ours.layers + list(theirs.layers):       # stateful layers start again at zero
        if getattr(layer, "stateful", False):
            layer.reset_state()
    a, b = _as_list(ours.predict(arg, verbose=0)), _as_list(theirs.predict(arg, verbose=0))
    for k, (p, q) in enumerate(zip(a, b)):
        ok &= _report(f"model output {k}", p, np.asarray(q), tol, per_step=True)
    print("verified: outputs agree" if ok else f"FAILED: differences above {tol}")
    return 0 if ok else 1


def verify_torch(path, tol=1e-5, timesteps=10, batch=4, seed=0, kind=None, nonlinearity="tanh",
                 head_on=None):
    """A ``.pt`` file in torch and in unrolled: a state dict runs in the torch modules its
    keys and shapes describe (``torch_state.torch_reference``, the head read as
    ``head_on`` says), a model ``unrolled convert`` wrote in its ``to_torch`` modules."""
    import torch

    from .commands import load_any
    from .torch_checkpoint import torch_reference

    ours = load_any(path, kind=kind, nonlinearity=nonlinearity, head_on=head_on)
    module, what = torch_reference(path, kind, nonlinearity, head_on)
    xs = random_inputs(ours, batch, timesteps, seed)
    with torch.no_grad():
        ref = module.eval()(torch.from_numpy(xs[0]))
    ref = (ref[0] if isinstance(ref, tuple) else ref).numpy()
    print(f"{path}: compared with torch {torch.__version__} ({what}), random input "
          f"{xs[0].shape}, seed {seed}")
    ok = _report("output", ours.predict(xs[0], verbose=0), ref, tol, per_step=True)
    print("verified: outputs agree" if ok else f"FAILED: differences above {tol}")
    return 0 if ok else 1


def verify(path, **kwargs):
    name = os.fspath(path).lower()
    if name.endswith((".pt", ".pth")):
        return verify_torch(path, **kwargs)
    torch_only = {k: kwargs.pop(k) for k in ("kind", "nonlinearity", "head_on") if k in kwargs}
    given = [f"--{k.replace('_', '-')}" for k, v in torch_only.items() if v not in (None, "tanh")]
    if given:
        raise SystemExit(f"{', '.join(given)} apply to PyTorch state files (.pt/.pth); {path} "
                         "is not one.")
    if name.endswith((".keras", ".h5", ".hdf5")) and not name.endswith(".weights.h5"):
        return verify_keras(path, **kwargs)
    raise SystemExit(f"verify compares a .keras/.h5 file with Keras or a .pt/.pth state with "
                     f"torch; {path} is neither.")
