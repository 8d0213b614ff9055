"""The code that ``to_numpy_code`` writes for each kind of layer.

Each writer takes ``(layer, fn, namer, node)`` and returns ``(source, activations,
weights)``: the source of a function ``fn(x)``, the activation helpers it calls, and the
arrays it reads from ``W`` under their keys ``"<fn>.<weight name>"``. The layers next to
recurrent ones (convolution, pooling, normalization, attention, ...) are written by
``codegen_companions``. A recurrent layer is the loop over time around the lines of one
step that its cell's registry entry declares (``layers/registry.py``: ``step_code``), so a
registered cell with step code is written like the built-in ones.
"""
import ast
import inspect
import keyword

from ..layers import registry
from .codegen_companions import COMPANION_WRITERS, EXTRA_ACTIVATIONS, companion_reason

ACTIVATIONS = {
    "linear": "def linear(x):\n    return x\n",
    "tanh": "def tanh(x):\n    return np.tanh(x)\n",
    "sigmoid": ("def sigmoid(x):\n    # 1 / (1 + exp(-x)), written with tanh so that no exp overflows\n"
                "    return 0.5 * np.tanh(0.5 * x) + 0.5\n"),
    "relu": "def relu(x):\n    return np.maximum(x, 0)\n",
    "hard_sigmoid": "def hard_sigmoid(x):\n    return np.clip(x / 6 + 0.5, 0, 1)\n",
    "hard_sigmoid_keras2": ("def hard_sigmoid_keras2(x):\n    # Keras 2's hard_sigmoid (Keras 3's is "
                            "clip(x / 6 + 0.5, 0, 1))\n    return np.clip(0.2 * x + 0.5, 0, 1)\n"),
    "softmax": ("def softmax(x):\n    e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
                "    return e / e.sum(axis=-1, keepdims=True)\n"),
    "elu": "def elu(x):\n    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))\n",
    "selu": ("def selu(x):\n    alpha, scale = 1.6732632423543772, 1.0507009873554805\n"
             "    return (scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))).astype(x.dtype)\n"),
    "softplus": "def softplus(x):\n    return np.logaddexp(x, 0).astype(x.dtype)   # log(1 + e^x)\n",
    "softsign": "def softsign(x):\n    return x / (1 + np.abs(x))\n",
    "swish": "def swish(x):\n    return x * (0.5 * np.tanh(0.5 * x) + 0.5)       # x * sigmoid(x)\n",
    "exponential": "def exponential(x):\n    return np.exp(x)\n",
    "relu6": "def relu6(x):\n    return np.clip(x, 0, 6)\n",
    **EXTRA_ACTIVATIONS,
}
PLAIN = ("Dense", "Embedding", "Activation", "Flatten", "Dropout", "RepeatVector", "Reshape",
         "Concatenate", "Add", "TimeDistributed", "Bidirectional")


def activation_source(name):
    return ACTIVATIONS[name]


def _act_ok(act):
    return act.name in ACTIVATIONS


def unsupported_reason(layer, node=None):
    """Why ``layer`` cannot be written as NumPy code, or None if it can."""
    kind = type(layer).__name__
    if hasattr(layer, "_nodes"):
        return "a nested model; call to_numpy_code on a flat model"
    cell = getattr(layer, "cell", None)
    if cell is not None:
        entry = registry.of_cell(cell)
        if entry is None or entry.step_code is None:
            why = ("; use " + ", ".join(coded()[:-1]) + " or " + coded()[-1] if entry is None
                   else " (its registry entry declares no step_code: docs/add-a-cell.md)")
            return f"its cell {type(cell).__name__} has no code writer{why}"
        if layer.stateful:
            return "stateful layers carry their state between calls"
        lines, acts = entry.step_code_of(cell)
        bad = [a for a in acts if a not in ACTIVATIONS]
        return f"activation {bad[0]!r} has no code writer" if bad else _step_reason(entry, cell, lines)
    if kind == "Masking" or (kind == "Embedding" and layer.mask_zero):
        return "it makes a mask, and masks are not written into the code"
    companion = companion_reason(layer, node, _act_ok)
    if companion is not False:
        return companion
    if kind not in PLAIN:
        return "no code writer for this layer"
    if kind in ("Dense", "Activation") and not _act_ok(layer.activation):
        return f"activation {layer.activation.name!r} has no code writer"
    if kind == "Bidirectional":
        if node is not None and node.states:
            return "initial_state passed to a Bidirectional layer"
        return unsupported_reason(layer.forward_layer) or unsupported_reason(layer.backward_layer)
    if kind == "TimeDistributed":
        if hasattr(layer.layer, "cell") or type(layer.layer).__name__ in ("Bidirectional", "TimeDistributed"):
            return "only per-step layers such as Dense can be wrapped"
        return unsupported_reason(layer.layer)
    return None


def coded():
    """The recurrent layers whose cells declare step code (the built-in SimpleRNN, LSTM, GRU
    and any registered cell type that gives ``step_code``)."""
    return tuple(t.name for t in registry.CELL_TYPES if t.step_code is not None)


# The names the loop around a step defines; the step's own names must differ from them.
_LOOP_NAMES = {"x", "t", "ys", "y", "initial_state", "np", "W"} | set(ACTIVATIONS)


def _step_reason(entry, cell, lines):
    """Why the step code of a registered cell cannot be written into the loop, or None:
    it must parse, assign every state, and keep clear of the loop's names."""
    weights = [w.name for w in cell.weights]
    clash = [n for n in weights if not n.isidentifier() or keyword.iskeyword(n)
             or n in _LOOP_NAMES or n in entry.states]
    if clash:
        return f"its weight {clash[0]!r} cannot be a variable of the generated loop"
    clash = [n for n in entry.states if not n.isidentifier() or keyword.iskeyword(n)
             or n in _LOOP_NAMES]
    if clash:
        return f"its state {clash[0]!r} cannot be a variable of the generated loop"
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as err:
        return f"the step_code of cell type {entry.name} is not Python ({err.msg})"
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)}
    if assigned & (_LOOP_NAMES | set(weights)):
        return (f"the step_code of cell type {entry.name} assigns "
                f"{sorted(assigned & (_LOOP_NAMES | set(weights)))[0]!r}, a name of the loop")
    missing = [s for s in entry.states if s not in assigned]
    if missing:
        return f"the step_code of cell type {entry.name} does not assign its state {missing[0]!r}"
    return None


def _weights(layer, fn):
    return {f"{fn}.{w.name}": w.numpy() for w in layer.weights}


def _doc(fn, text):
    return f"def {fn}(x):\n    \"\"\"{text}\"\"\"\n"


# --- recurrent layers --------------------------------------------------------------------
def _shown_options(entry, cell):
    """The entry's ``code_options`` whose value differs from the cell's default."""
    params = inspect.signature(entry.cell.__init__).parameters
    return [f"{o}={getattr(cell, o)!r}" for o in entry.code_options
            if o in params and getattr(cell, o) != params[o].default]


def write_rnn(layer, fn, namer=None, node=None, with_state=None):
    """The loop over time (states, ``go_backwards``, ``return_sequences``/``return_state``)
    around the lines of one step from the cell's registry entry; the output of a step is the
    first state."""
    cell = layer.cell
    entry = registry.of_cell(cell)
    kind = type(cell).__name__.removesuffix("Cell")
    states = list(entry.states)
    if with_state is None:
        with_state = any(n.states for n in layer._inbound_nodes)
    out_shape = "(N, T, {})" if layer.return_sequences else "(N, {})"
    opts = [f"{k}=True" for k in ("return_sequences", "return_state", "go_backwards") if getattr(layer, k)]
    opts += _shown_options(entry, cell)
    doc = (f"{kind}({cell.units}{''.join(', ' + o for o in opts)}): (N, T, features) -> "
           + out_shape.format(cell.units) + (" and the final states" if layer.return_state else "") + ".")
    names = [w.name for w in cell.weights]
    src = [f"def {fn}(x{', initial_state=None' if with_state else ''}):", f'    """{doc}"""',
           f"    {', '.join(names)} = {', '.join(f'W[{fn + chr(46) + n!r}]' for n in names)}"]
    zeros = [f"np.zeros((x.shape[0], {size}), dtype=np.{layer.dtype})" for size in cell.state_size]
    if with_state:
        src += ["    if initial_state is None:",
                *[f"        {s} = {z}" for s, z in zip(states, zeros)],
                "    else:", f"        {', '.join(states) if len(states) > 1 else f'({states[0]},)'} = initial_state"]
    else:
        src += [f"    {s} = {z}" for s, z in zip(states, zeros)]
    if layer.return_sequences:
        src.append("    ys = []")
    loop = "reversed(range(x.shape[1]))" if layer.go_backwards else "range(x.shape[1])"
    src.append(f"    for t in {loop}:" + ("            # go_backwards: the last step first"
                                           if layer.go_backwards else ""))
    step, acts = entry.step_code_of(cell)
    src += [f"        {line}" for line in step]
    if layer.return_sequences:
        src.append(f"        ys.append({states[0]})")
        src.append("    y = np.stack(ys, axis=1)" + ("                # in processing order, as Keras"
                                                     if layer.go_backwards else ""))
    y = "y" if layer.return_sequences else states[0]
    src.append(f"    return {y}" + (f", {', '.join(states)}" if layer.return_state else ""))
    return "\n".join(src) + "\n", set(acts), _weights(layer, fn)


def write_bidirectional(layer, fn, namer, node):
    f_fn, b_fn = namer(layer.forward_layer.name), namer(layer.backward_layer.name)
    f_src, f_acts, f_w = write_rnn(layer.forward_layer, f_fn, with_state=False)
    b_src, b_acts, b_w = write_rnn(layer.backward_layer, b_fn, with_state=False)
    mode, states = layer.merge_mode, layer.return_state
    src = [f"{f_src}\n\n{b_src}\n", _doc(fn, f"Bidirectional(merge_mode={mode!r}): the sequence read "
                                            "forwards and backwards.")]
    if states:
        src += [f"    y, *states_f = {f_fn}(x)", f"    y_rev, *states_b = {b_fn}(x)"]
    else:
        src += [f"    y = {f_fn}(x)", f"    y_rev = {b_fn}(x)"]
    if layer.return_sequences:
        src.append("    y_rev = y_rev[:, ::-1]                  # back to input order")
    merged = {"concat": "np.concatenate([y, y_rev], axis=-1)", "sum": "y + y_rev",
              "ave": "(y + y_rev) / 2", "mul": "y * y_rev", None: "y, y_rev"}[mode]
    src.append(f"    return {merged}" + (", *states_f, *states_b" if states else ""))
    return "\n".join(src) + "\n", f_acts | b_acts, {**f_w, **b_w}


# --- the other layers --------------------------------------------------------------------
def write_dense(layer, fn, namer=None, node=None):
    act = layer.activation.name
    z = "x @ W[{!r}]".format(f"{fn}.kernel") + (" + W[{!r}]".format(f"{fn}.bias") if layer.use_bias else "")
    body = f"    return {z if act == 'linear' else f'{act}({z})'}\n"
    return _doc(fn, f"Dense({layer.units}, activation={act!r}).") + body, {act}, _weights(layer, fn)


def write_embedding(layer, fn, namer=None, node=None):
    body = ("    ids = np.asarray(x)\n    if ids.dtype.kind != 'i':\n"
            "        ids = ids.astype(np.int64)               # float ids truncate, as Keras casts\n"
            f"    return W[{fn + '.embeddings'!r}][ids]\n")
    return _doc(fn, f"Embedding({layer.input_dim}, {layer.output_dim}): row ids of the table.") + body, \
        set(), _weights(layer, fn)


def write_time_distributed(layer, fn, namer, node):
    inner = namer(layer.layer.name)
    inner_src, acts, w = LAYER_WRITERS[type(layer.layer).__name__](layer.layer, inner, namer, None)
    src = (f"{inner_src}\n\n" + _doc(fn, f"TimeDistributed({type(layer.layer).__name__}): "
                                         "the same layer at every time step.")
           + "    b, t = x.shape[:2]\n"
           + f"    y = {inner}(x.reshape((b * t,) + x.shape[2:]))   # time folded into the batch\n"
           + "    return y.reshape((b, t) + y.shape[1:])\n")
    return src, acts, w


def _simple(doc, body, acts=()):
    def write(layer, fn, namer=None, node=None):
        return (_doc(fn, doc(layer)) + f"    return {body(layer)}\n", set(acts(layer) if callable(acts) else acts), {})
    return write


def write_add(layer, fn, namer=None, node=None):
    src = (f"def {fn}(xs):\n    \"\"\"Add: the elementwise sum; a lower-rank input gets axes "
           "after the batch axis.\"\"\"\n    rank = max(x.ndim for x in xs)\n    y = 0\n"
           "    for x in xs:\n        y = y + x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:])\n"
           "    return y\n")
    return src, set(), {}


def write_concatenate(layer, fn, namer=None, node=None):
    return (f"def {fn}(xs):\n    \"\"\"Concatenate(axis={layer.axis}).\"\"\"\n"
            f"    return np.concatenate(xs, axis={layer.axis})\n"), set(), {}


LAYER_WRITERS = {
    **COMPANION_WRITERS,
    "Bidirectional": write_bidirectional, "Dense": write_dense, "Embedding": write_embedding,
    "TimeDistributed": write_time_distributed, "Add": write_add, "Concatenate": write_concatenate,
    "Activation": _simple(lambda l: f"Activation({l.activation.name!r}).",
                          lambda l: f"{l.activation.name}(x)", lambda l: {l.activation.name}),
    "Flatten": _simple(lambda l: "Flatten: (N, ...) -> (N, features).", lambda l: "x.reshape(x.shape[0], -1)"),
    "Dropout": _simple(lambda l: f"Dropout({l.rate}): the identity at inference.", lambda l: "x"),
    "RepeatVector": _simple(lambda l: f"RepeatVector({l.n}): (N, F) -> (N, {l.n}, F).",
                            lambda l: f"np.repeat(x[:, None, :], {l.n}, axis=1)"),
    "Reshape": _simple(lambda l: f"Reshape({l.target_shape}).",
                       lambda l: f"x.reshape((x.shape[0],) + {tuple(int(d) for d in l.target_shape)})"),
}


def writer_of(layer):
    """The writer of ``layer``: the time loop for a recurrent layer (its cell checked by
    ``unsupported_reason``), else the writer of its class."""
    return write_rnn if getattr(layer, "cell", None) is not None else LAYER_WRITERS[type(layer).__name__]
