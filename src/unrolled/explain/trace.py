"""``trace(model, x)``: every value of the forward pass, layer by layer and step by step.

Nothing is recomputed here. The model runs its ordinary forward pass; the values come
from the caches that pass keeps for backpropagation (read by the cell's ``cache_names``)
and from the arguments and results of each ``cell.step`` call, which are recorded on the
way (the loop in ``recurrent/loop.py`` returns step caches but not the states each step
produced, so ``recording.record_calls`` listens to the cell for them).

For a recurrent layer the trace holds, each as an array ``(batch, T, ...)``:

``x``
    the step's input ``x_t``;
``xp``
    its projection ``x_t @ kernel``, all gates side by side (plus the input bias of a
    SimpleRNN or a GRU; an LSTM adds its bias after the recurrent product);
``h_prev`` (``c_prev``)
    the states the step started from;
every entry of the cell's cache
    e.g. SimpleRNN ``a, h``; LSTM ``z`` (split into ``zi zf zc zo``), ``i f g o c tc``;
    GRU ``az ar z r rh ah hh`` (``g`` is Keras's candidate gate "c");
``h`` (``c``) and ``output``
    the new states and the step's output, as the cell computed them.

Steps are indexed in real time order, ``t = 0`` the first element of the sequence, also
for ``go_backwards`` layers, which process ``t = T-1`` first (``processing_step`` says
when each ``t`` was processed). At a masked step (``mask`` False) the loop discards what
the cell computed and carries the previous states on.
"""
import numpy as np

from ..fast import kernels
from ..layers import registry
from .recording import cells_of, is_recurrent, recording_forwards, recording_steps

# Fused gate vectors are split into one block per gate (the cell registry's
# ``fused_cache``); a fused entry whose blocks the cache also holds one by one is not
# repeated. States are named as the registry names them.
_SKIP = ("rec_mask", "h_in")   # dropout bookkeeping; in inference h_in is h_prev


class LayerTrace:
    """One layer's recorded values: ``lt["f"]`` or ``lt.f`` is an array ``(batch, T, units)``.

    ``keys()`` lists the quantities. ``at(t, sample)`` gives every quantity at one step as
    a dict of vectors. Non-recurrent layers have ``input``/``output`` (``input_k``/
    ``output_k`` for several; Dense also ``z``; the attention layers ``weights``, the
    softmax weights with the query step on axis 1: ``(batch, Tq, Tv)``, per head
    ``(batch, Tq, heads, Tv)`` for MultiHeadAttention), with a time axis (``time_axis``)
    only if every value has one of the same length (a strided Conv1D, a pooling layer or
    an attention with Tq != Tv has none: ``at()`` then gives whole arrays).
    """

    def __init__(self, name, layer, values, kind, cell=None, go_backwards=False, mask=None,
                 time_axis=True):
        self.name = name
        self.layer = layer
        self.values = values
        self.kind = kind
        self.cell = cell
        self.go_backwards = go_backwards
        self.mask = mask
        self.time_axis = time_axis

    @property
    def recurrent(self):
        return self.cell is not None

    @property
    def steps(self):
        """How many time steps (None without a time axis)."""
        if not self.time_axis:
            return None
        return next(iter(self.values.values())).shape[1]

    @property
    def processing_step(self):
        """``processing_step[t]``: the loop iteration that computed real time step ``t``."""
        T = self.steps
        return np.arange(T)[::-1] if self.go_backwards else np.arange(T)

    @property
    def order(self):
        return "backwards (t = T-1 first)" if self.go_backwards else "forwards"

    def keys(self):
        return list(self.values)

    def __contains__(self, key):
        return key in self.values

    def __getitem__(self, key):
        if key not in self.values:
            raise KeyError(f"Layer '{self.name}' recorded no {key!r}; it has {self.keys()}.")
        return self.values[key]

    def __getattr__(self, key):
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"LayerTrace '{self.__dict__.get('name')}' has no {key!r}; "
                             f"it has {list(values)}.")

    def check_step(self, t):
        """``t`` as an index in ``[0, T)``; negative counts from the end. ValueError otherwise."""
        T = self.steps
        if T is None:
            if t not in (None, 0, -1):
                raise ValueError(f"Layer '{self.name}' has no time axis (its input is "
                                 f"{self.values['input'].shape}); pass t=None.")
            return None
        if t is None:
            return T - 1
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool) or not -T <= t < T:
            raise ValueError(f"Time step t={t!r} is out of range: layer '{self.name}' ran "
                             f"{T} steps, so t must be an integer in [0, {T - 1}] (or "
                             f"[-{T}, -1] from the end).")
        return int(t) % T

    def check_sample(self, sample):
        B = next(iter(self.values.values())).shape[0]
        if not isinstance(sample, (int, np.integer)) or not -B <= sample < B:
            raise ValueError(f"sample={sample!r} is out of range: the batch has {B} "
                             f"sample(s), so sample must be in [0, {B - 1}].")
        return int(sample) % B

    def at(self, t=None, sample=0):
        """Every quantity at step ``t`` (default: the last) of one sample, as vectors."""
        t, s = self.check_step(t), self.check_sample(sample)
        if t is None:
            return {k: v[s] for k, v in self.values.items()}
        return {k: v[s, t] for k, v in self.values.items()}

    def to_dataframe(self):
        """A long pandas DataFrame: one row per (quantity, sample, t, unit) value."""
        return _dataframe([self])

    def __repr__(self):
        what = f"{self.steps} steps, {self.order}" if self.time_axis else "no time axis"
        return f"<LayerTrace {self.name} ({self.kind}), {what}: {', '.join(self.keys())}>"


class Trace:
    """The trace of a whole model: ``tr["lstm"]`` is that layer's ``LayerTrace``.

    Layers are in graph order; a Bidirectional layer contributes its merged output under
    its own name and its two directions as ``"<name>/forward_<rnn>"`` and
    ``"<name>/backward_<rnn>"``; a stack of cells one entry per cell (``"<rnn>/cell_<k>"``).
    """

    def __init__(self, layers, outputs):
        self.layers = {lt.name: lt for lt in layers}
        self.outputs = outputs

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return list(self.layers.values())[key]
        if key not in self.layers:
            raise KeyError(f"No layer {key!r} in this trace; it has {list(self.layers)}.")
        return self.layers[key]

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self):
        return len(self.layers)

    def keys(self):
        return list(self.layers)

    @property
    def recurrent(self):
        """The recurrent layer traces, in graph order."""
        return [lt for lt in self if lt.recurrent]

    def to_dataframe(self):
        """All layers in one long DataFrame (columns layer, quantity, sample, t, unit, value)."""
        return _dataframe(list(self))

    def __repr__(self):
        return "<Trace\n" + "\n".join(f"  {lt!r}" for lt in self) + "\n>"


def _dataframe(layer_traces):
    from ..optional import require
    pd = require("pandas", "A trace's DataFrame")

    frames = []
    for lt in layer_traces:
        for q, v in lt.values.items():
            v = np.asarray(v)
            if not lt.time_axis:
                v = v.reshape(v.shape[0], 1, -1)
            v = v.reshape(v.shape[0], v.shape[1], -1)
            s, t, u = (a.ravel() for a in np.indices(v.shape))
            frames.append(pd.DataFrame({
                "layer": lt.name, "quantity": q, "sample": s,
                "t": pd.array(t, dtype="Int64") if lt.time_axis else pd.array([None] * t.size, dtype="Int64"),
                "unit": u, "value": v.ravel().astype(float)}))
    return pd.concat(frames, ignore_index=True)


# --- reading the caches ------------------------------------------------------------------------
def _to_real_time(steps, go_backwards):
    """Per-step arrays (processing order) -> one array (batch, T, ...) in real time order."""
    arr = np.stack(steps, axis=1)
    return np.ascontiguousarray(arr[:, ::-1]) if go_backwards else arr


def _cell_values(cell, xs, records):
    """The named quantities of one cell from its step records ``[(args, result), ...]``."""
    cname = type(cell).__name__
    names = getattr(cell, "cache_names", None)
    if names is None:
        raise TypeError(f"Cell {cname} has no `cache_names`, so explain cannot name its values. "
                        "Add cache_names (the names of step()'s cache entries) to the cell.")
    entry = registry.of_cell(cell)
    fused = entry.fused_cache if entry else {}
    state_names = entry.states if entry else (
        ("h",) if len(cell.state_size) == 1 else
        tuple(f"state_{k}" for k in range(len(cell.state_size))))
    steps = {"x": [], "xp": []}
    for (xp_t, states, *_), (out, new_states, cache) in records:
        if len(cache) != len(names):
            raise TypeError(f"{cname}.cache_names lists {len(names)} names but step() cached "
                            f"{len(cache)} values.")
        row = {"xp": xp_t}
        row.update({f"{n}_prev": s for n, s in zip(state_names, states)})
        for n, v in zip(names, cache):
            if v is None or n in _SKIP:
                continue
            if n in fused:
                parts = fused[n]
                if all(p in names for p in parts):
                    continue
                row[n] = v
                row.update(zip(parts, np.split(v, len(parts), axis=-1)))
            else:
                row[n] = v
        row.update(zip(state_names, new_states))
        row["output"] = out
        for k, v in row.items():
            steps.setdefault(k, []).append(v)
    steps["x"] = list(xs) if xs is not None else []
    return {k: v for k, v in steps.items() if v}


def rnn_traces(rnn, cache, logs, name=None):
    """LayerTraces of a recurrent layer from its forward ``cache`` and the recorded steps."""
    xs, m, _dp, caches, _n, _shape = cache
    name = name or rnn.name
    cells = cells_of(rnn.cell)
    out = []
    for k, cell in enumerate(cells):
        by_cache = {}
        for rec in logs[id(cell)]:
            by_cache[id(rec[1][2])] = rec
        # the real forward cache, step by step: a stack keeps (x_k, cache_k) per cell
        step_caches = [c if len(cells) == 1 else c[k][1] for c in caches]
        records = [by_cache[id(c)] for c in step_caches]
        if len(cells) == 1:
            x_in = xs
        else:
            x_in = xs if k == 0 else [c[k][0] for c in caches]
        per_step = _cell_values(cell, x_in, records)
        values = {q: _to_real_time(v, rnn.go_backwards) for q, v in per_step.items()}
        mask = None if m is None else _to_real_time(list(m), rnn.go_backwards)
        if mask is not None:
            values["mask"] = mask
        lname = name if len(cells) == 1 else f"{name}/cell_{k}"
        out.append(LayerTrace(lname, rnn, values, type(cell).__name__.removesuffix("Cell"),
                              cell=cell, go_backwards=rnn.go_backwards, mask=mask))
    return out


def _plain_trace(layer, inputs, outputs, cache):
    values = {}
    ins = inputs if isinstance(inputs, list) else [inputs]
    for k, a in enumerate(ins):
        values["input" if len(ins) == 1 else f"input_{k}"] = np.asarray(a)
    outs = outputs if isinstance(outputs, list) else [outputs]
    for k, a in enumerate(outs):
        values["output" if len(outs) == 1 else f"output_{k}"] = np.asarray(a)
    kind = type(layer).__name__
    if kind == "Dense":
        values["z"] = cache[1]
    elif kind == "TimeDistributed" and type(layer.layer).__name__ == "Dense":
        inner, b, t = cache
        values["z"] = inner[1].reshape((b, t) + inner[1].shape[1:])
    elif kind in ATTENTION:
        values["weights"] = attention_weights(layer, cache)
    time_axis = (all(np.ndim(v) >= 3 for v in values.values())
                 and len({np.shape(v)[1] for v in values.values()}) == 1
                 and kind != "Permute")
    if kind == "Embedding":
        time_axis = values["input"].ndim == 2
    return LayerTrace(layer.name, layer, values, kind, time_axis=time_axis)


# The attention layers and where their forward cache keeps the softmax weights.
ATTENTION = ("Attention", "AdditiveAttention", "MultiHeadAttention")


def attention_weights(layer, cache):
    """The attention weights after the softmax (before any dropout), query step first:
    ``(batch, Tq, Tv)`` for Attention/AdditiveAttention, ``(batch, Tq, heads, Tv)`` for
    MultiHeadAttention (Keras's ``return_attention_scores`` gives ``(batch, heads, Tq, Tv)``),
    so that ``weights[s, t]`` is how query step ``t`` spreads over the keys."""
    if type(layer).__name__ == "MultiHeadAttention":
        return np.ascontiguousarray(np.swapaxes(cache[8], 1, 2))   # P (B, H, T, S)
    return cache[5]                                                 # W (B, Tq, Tv)


def layer_traces(layer, inputs, outputs, cache, logs):
    """The LayerTraces of one layer call from its forward cache."""
    if is_recurrent(layer):
        return rnn_traces(layer, cache, logs)
    if hasattr(layer, "forward_layer"):
        f_cache, b_cache = cache[0], cache[1]
        return ([_plain_trace(layer, inputs, outputs, None)]
                + rnn_traces(layer.forward_layer, f_cache, logs, f"{layer.name}/{layer.forward_layer.name}")
                + rnn_traces(layer.backward_layer, b_cache, logs, f"{layer.name}/{layer.backward_layer.name}"))
    return [_plain_trace(layer, inputs, outputs, cache)]


def trace(model_or_layer, x, mask=None, initial_state=None):
    """Run ``model_or_layer`` forward on ``x`` (inference) and return a ``Trace`` of every value.

    ``model_or_layer``: a ``Model``/``Sequential``, or one layer (then ``x`` is its input,
    and ``mask`` and ``initial_state`` are passed on). A wrong input shape raises the
    model's or layer's own ValueError, which names the expected shape.
    """
    from ..layers.base import Layer

    if not isinstance(model_or_layer, Layer):
        raise TypeError(f"trace expects an unrolled Model or Layer; received "
                        f"{type(model_or_layer).__name__}.")
    obj = model_or_layer
    if hasattr(obj, "_nodes"):                       # a model: run the graph, read its tape
        xs = obj._standardize_inputs(x)
        calls = []                                   # every node's forward call, in order
        with kernels.unfused(), recording_steps(obj) as logs, recording_forwards(obj, calls):
            y, tape = obj.forward(obj._pack(xs), training=False)
        out, j = [], 0
        for node, cache in tape:
            while calls[j][1][1] is not cache:      # skip calls made inside a wrapper layer
                j += 1
            (args, (outputs, _)), j = calls[j], j + 1
            out += layer_traces(node.layer, args[0], outputs, cache, logs)
        return Trace(out, y)
    x = obj._prepare_eager(x)
    kwargs = {} if initial_state is None else {"initial_state": initial_state}
    with kernels.unfused(), recording_steps(obj) as logs:
        y, cache = obj.forward(x, training=False, mask=mask, **kwargs)
    return Trace(layer_traces(obj, x, y, cache, logs), y)
