"""``equations(layer, x, t)``: a layer's equations at one time step, with its numbers in them.

Each line is an equation of the cell, as its registry entry declares it
(``layers/registry.py``: ``equations``), then the same equation with the values of this
step substituted, then the result::

    f  = sigmoid(zf)  = sigmoid([0.4213, -1.0187])  = [0.6038, 0.2653]
    c  = f * c_prev + i * g  = [0.6038, 0.2653] * [...] + ...  = [...]

The results are read from the trace (the real forward pass); only the products with a
weight (``x_t @ kernel_i``, ``h_prev @ recurrent_kernel_i``) are multiplied out here, for
the units shown, to show where a sum comes from. A registered cell with equations is
explained the same way as the built-in ones. ``str(eq)`` is plain text; in a notebook the
object shows as HTML (``_repr_html_``) or LaTeX (``_repr_latex_``).
"""
import html
import re

import numpy as np

from ..layers import registry
from .trace import LayerTrace, trace

_MAX_SHOWN = 6


class Line:
    """``lhs = formula = substituted = result`` (``substituted`` may be empty)."""

    def __init__(self, lhs, formula, substituted, result):
        self.lhs, self.formula, self.substituted = lhs, formula, substituted
        self.result = np.asarray(result)


class Equations:
    """A layer's equations at one step: ``lines`` (each with ``lhs``, ``formula``,
    ``substituted`` and ``result``), ``values`` (lhs -> result vector, shown units only).
    ``symbols``: the LaTeX of the cell's own names (its registry entry's)."""

    def __init__(self, title, lines, units, digits, symbols=None):
        self.title, self.lines, self.units, self.digits = title, lines, units, digits
        self.symbols = {} if symbols is None else dict(symbols)
        self.values = {ln.lhs: ln.result for ln in lines}

    def _rows(self, fmt):
        for ln in self.lines:
            parts = [p for p in (ln.formula, ln.substituted) if p]
            yield ln.lhs, parts, fmt(ln.result, self.digits)

    def __str__(self):
        rows = list(self._rows(vec))
        width = max(len(r[0]) for r in rows)
        out = [self.title]
        for lhs, parts, result in rows:
            parts = [p for p in parts if p != result] + [result]
            line = f"  {lhs.ljust(width)} = " + " = ".join(parts)
            if len(line) > 100:                      # one part per line, the = signs aligned
                line = f"\n  {' ' * width} = ".join([line[:len(lhs.ljust(width)) + 5] + parts[0]]
                                                       + parts[1:])
            out.append(line)
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self):
        from .readable import elide               # an input of 60 values: its first 12

        rows = []
        for ln in self.lines:
            result = elide(ln.result, self.digits)
            rhs = f"<td>= {html.escape(ln.formula)}</td>" if ln.formula else "<td></td>"
            rows.append(f"<tr><th>{html.escape(ln.lhs)}</th>{rhs}<td class='result'>= "
                        f"{html.escape(result)}</td></tr>")
            if ln.substituted:
                rows.append(f"<tr class='sub'><td></td><td colspan='2'>= "
                            f"{html.escape(ln.substituted)}</td></tr>")
        return (f"<div class='equations'><p class='title'>{html.escape(self.title)}</p>"
                f"<table class='equations'>{''.join(rows)}</table></div>")

    def _repr_latex_(self):
        body = []
        for lhs, parts, result in self._rows(vec):
            rhs = " &= ".join(to_tex(p, self.symbols) for p in parts if p != result)
            body.append(f"{to_tex(lhs, self.symbols)} &= {rhs + ' &= ' if rhs else ''}"
                        f"{to_tex(result, self.symbols)}")
        title = self.title.replace("_", r"\_").replace("'", "")
        return (f"$$\\text{{{title}}}$$\n$$\\begin{{aligned}}\n" + " \\\\\n".join(body)
                + "\n\\end{aligned}$$")


def vec(v, digits=4):
    """A vector as ``[0.1234, -0.5678]``."""
    v = np.atleast_1d(np.asarray(v, dtype=float))
    return "[" + ", ".join(f"{a:.{digits}f}" for a in v) + "]"


# The LaTeX of the names every cell shares; a cell type's own names (zi, hh, ...) are in
# its registry entry's ``symbols``. A state before the step, ``h_prev``, is ``h_{t-1}``.
_TEX = {"x_t": "x_t", "sigmoid": r"\sigma", "tanh": r"\tanh",
        "recurrent_kernel": "U", "kernel": "W", "bias": "b",
        "hard_sigmoid_keras2": r"\mathrm{hard\_sigmoid}_{\mathrm{K2}}",
        "hard_sigmoid": r"\mathrm{hard\_sigmoid}"}


def to_tex(text, symbols=None):
    """The plain form of an equation as LaTeX: names with subscripts, ``*`` as ``\\odot``.

    ``symbols``: the LaTeX of a cell type's own names (its registry entry's ``symbols``);
    None: those of every registered cell type."""
    if symbols is None:
        symbols = {k: v for entry in registry.CELL_TYPES for k, v in entry.symbols.items()}
    table = {**_TEX, **symbols}
    text = re.sub(r"\b(recurrent_kernel|kernel|bias)(\[\d\])?_(\w)\b",
                  lambda m: f"{table[m.group(1)]}{'^{(' + m.group(2)[1] + ')}' if m.group(2) else ''}_{m.group(3)}",
                  text)
    names = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
    text = re.sub(rf"\b(?:(\w+?)_prev|({names}))\b",
                  lambda m: f"{m.group(1)}_{{t-1}}" if m.group(1) else table[m.group(2)], text)
    return text.replace(" @ ", r"\,").replace("*", r"\odot").replace("relu", r"\mathrm{relu}")


def _select_units(units, n):
    if units is None:
        return np.arange(min(n, _MAX_SHOWN))
    if isinstance(units, slice):
        idx = np.arange(n)[units]
    else:
        idx = np.atleast_1d(np.asarray(units))
    if idx.dtype.kind not in "iu" or idx.size == 0 or idx.min() < -n or idx.max() >= n:
        raise ValueError(f"units={units!r} must select units in [0, {n - 1}] (the layer has "
                         f"{n} units), e.g. units=[0, 1] or units=slice(0, 4).")
    return idx % n


def _layer_trace(layer, x):
    if isinstance(layer, LayerTrace):
        return layer
    from ..layers.base import Layer

    if not isinstance(layer, Layer):
        raise TypeError(f"equations expects a layer (with its input x) or a LayerTrace; "
                        f"received {type(layer).__name__}.")
    if hasattr(layer, "_nodes"):
        raise TypeError("equations explains one layer: pass model.get_layer(name) with that "
                        "layer's input, or trace(model, x)[name].")
    _check_kind(layer)
    if x is None:
        raise ValueError(f"equations needs the input x of layer '{layer.name}'.")
    return trace(layer, x)[0]


def _entry(cell):
    """The registry entry of ``cell`` if it declares equations, else None."""
    entry = registry.of_cell(cell)
    return entry if entry is not None and entry.equations is not None else None


def known():
    """What ``equations`` explains: the registered cells that declare equations (by their
    cell's name without "Cell"), Dense, and the ``COMPANIONS``."""
    cells = tuple(t.cell_name.removesuffix("Cell") for t in registry.CELL_TYPES
                  if t.equations is not None)
    return cells + ("Dense",) + tuple(COMPANIONS)


def has_equations(layer):
    """Whether ``equations`` explains ``layer`` (or a cell, or a LayerTrace)."""
    if isinstance(layer, LayerTrace):
        layer = layer.cell if layer.cell is not None else layer.layer
    cell = getattr(layer, "cell", None)
    if cell is not None or registry.of_cell(layer) is not None:
        return _entry(layer if cell is None else cell) is not None
    return type(layer).__name__ in ("Dense",) + tuple(COMPANIONS)


def _check_kind(layer):
    cell = getattr(layer, "cell", None)
    obj = cell if cell is not None else layer
    name = type(obj).__name__.removesuffix("Cell")
    if has_equations(layer):
        return name
    entry = registry.of_cell(obj)
    why = (f". Its cell type {entry.name} is registered without equations: add them to its "
           "registry entry (docs/add-a-cell.md)." if entry is not None else
           ". Explain its sub-layers one by one instead.")
    raise TypeError(f"equations knows {', '.join(known())}; layer '{layer.name}' is a "
                    f"{type(layer).__name__}"
                    + (f" with a {type(layer.cell).__name__}" if hasattr(layer, "cell") else "")
                    + why)


def equations(layer, x=None, t=None, sample=0, units=None, digits=4):
    """The equations of ``layer`` at time step ``t`` (default: the last) for one ``sample``.

    ``layer``: a SimpleRNN, LSTM, GRU (either ``reset_after``), a layer of any registered
    cell whose entry declares ``equations`` (docs/add-a-cell.md), or a Dense layer, with its
    input ``x``; or a ``LayerTrace`` from ``trace(model, x)`` (then ``x`` is not needed).
    A layer next to recurrent ones (``COMPANIONS``: Conv1D, pooling, normalization,
    activation layers, attention, noise) gets one line, its formula and its output at step
    ``t`` of its output (attention layers first show the weights of query step ``t``).
    ``units``: which units to show (an int, a list or a slice; default the first six).
    Time steps are real time (t=0 is the sequence's first element) even for go_backwards.
    """
    lt = _layer_trace(layer, x)
    kind = _check_kind(lt.layer if lt.cell is None else lt.cell)
    if kind in COMPANIONS:
        return _companion(lt, kind, t, sample, units, digits)
    t_idx = lt.check_step(t)
    s = lt.check_sample(sample)
    v = lt.at(t_idx, s)
    owner = lt.cell if lt.cell is not None else lt.layer
    n = owner.units
    u = _select_units(units, n)
    shown = f"units {[int(i) for i in u]}" if len(u) < n else f"all {n} units"
    when = "" if t_idx is None else f", step t={t_idx} of {lt.steps}" + (
        " (processed backwards)" if lt.go_backwards else "")
    title = f"{kind} '{lt.name}'{when}, sample {s}, {shown}"
    if lt.cell is None:
        return Equations(title, _dense(owner, v, u, digits), u, digits, {})
    entry = _entry(lt.cell)
    return Equations(title, _cell_lines(entry, lt.cell, v, u, digits), u, digits, entry.symbols)


# A product with a weight (``x_t @ kernel_i``, ``(r * h_prev) @ recurrent_kernel_h``), or one
# name: a trace value, a weight (``bias_i``, ``bias[0]_z``), or a function when "(" follows.
_REF = r"[A-Za-z_]\w*(?:\[\d+\])?(?:_[A-Za-z0-9]+)?"
_TOKEN = re.compile(rf"(?<![\w.])(?:(?P<left>\([^()]*\)|[A-Za-z_]\w*) @ (?P<right>{_REF})"
                    rf"|(?P<name>{_REF})(?P<call>\()?)")


def _cell_lines(entry, cell, v, u, d):
    """The step's inputs, then each of the entry's equations: its formula, the formula with
    this step's numbers, and the traced result."""
    lines = [Line("x_t", "", "", v["x"])]
    lines += [Line(f"{s}_prev", "", "", v[f"{s}_prev"][u]) for s in entry.states]
    for lhs, formula in entry.equations_of(cell):
        numbers = _Numbers(entry, cell, v, u, d, f"{lhs} = {formula}")
        if lhs not in v:
            raise numbers.unknown(lhs, "is not a value of its trace (its cache_names)")
        lines.append(Line(lhs, formula, _TOKEN.sub(numbers, formula), v[lhs][u]))
    return lines


class _Numbers:
    """``_TOKEN.sub(_Numbers(...), formula)``: the formula with each name replaced by its
    value for the units ``u`` (``x_t`` whole) and each product with a weight multiplied out
    for them; activations stay as written."""

    def __init__(self, entry, cell, v, u, d, equation):
        self.entry, self.cell, self.v, self.u, self.d = entry, cell, v, u, d
        self.equation = equation

    def __call__(self, m):
        if m.group("left") is not None:                       # A @ W
            w, cols = self.weight(m.group("right"))
            return vec(self.operand(m.group("left")) @ w[:, cols], self.d)
        name = m.group("name")
        if m.group("call"):                                    # an activation
            return m.group(0)
        key = "x" if name == "x_t" else name
        if key in self.v:
            a = np.asarray(self.v[key])
            return vec(a[self.u] if key != "x" and a.shape[-1] == self.cell.units else a, self.d)
        w, cols = self.weight(name)
        return vec(w[..., cols], self.d)

    def operand(self, text):
        """The left side of ``A @ W`` for every unit: a value, or ``(a * b)`` of values."""
        out = None
        for name in (text[1:-1].split(" * ") if text.startswith("(") else [text]):
            key = "x" if name.strip() == "x_t" else name.strip()
            if key not in self.v:
                raise self.unknown(name.strip(), "is not a value of its trace")
            out = self.v[key] if out is None else out * self.v[key]
        return out

    def weight(self, name):
        """``(array, columns)`` of ``kernel``, ``kernel_i`` (gate block i), ``bias[0]_z``."""
        head, sub = name, None
        if not _is_weight(self.cell, re.sub(r"\[\d+\]$", "", name)) and "_" in name:
            head, sub = name.rsplit("_", 1)
        m = re.fullmatch(r"([A-Za-z_]\w*)(?:\[(\d+)\])?", head)
        if m is None or not _is_weight(self.cell, m.group(1)):
            raise self.unknown(name, "is neither a value of its trace nor a weight of the cell")
        blocks = tuple(self.entry.subscripts)
        if sub is not None and sub not in blocks:
            raise self.unknown(name, f"has a gate block {sub!r} that its subscripts "
                                     f"{self.entry.subscripts!r} do not name")
        w = getattr(self.cell, m.group(1)).value
        w = w if m.group(2) is None else w[int(m.group(2))]
        block = 0 if sub is None else blocks.index(sub)
        return w, block * self.cell.units + self.u

    def unknown(self, name, why):
        return ValueError(f"The equation '{self.equation}' of cell type {self.entry.name} "
                          f"names {name!r}, which {why}; its trace has x_t, "
                          f"{', '.join(k for k in self.v if k != 'x')}.")


def _is_weight(cell, name):
    w = getattr(cell, name, None)
    return w is not None and any(w is x for x in cell.weights)


def _dense(layer, v, u, d):
    x = v["input"]
    terms = [x @ layer.kernel.value[:, u]] + ([layer.bias.value[u]] if layer.use_bias else [])
    act = layer.activation.name
    lines = [Line("x", "", "", x),
             Line("z", "x @ kernel" + (" + bias" if layer.use_bias else ""),
                  " + ".join(vec(a, d) for a in terms), v["z"][u])]
    if act == "linear":
        lines.append(Line("y", "z", "", v["output"][u]))
    else:
        lines.append(Line("y", f"{act}(z)", f"{act}({vec(v['z'][u], d)})", v["output"][u]))
    return lines


# --- the layers next to recurrent ones: one line each ------------------------------------------
# The formula, and the layer's output at step t (of its output's time axis) as the result; the
# attention layers first show their weights for query step t (one row per head).
COMPANIONS = {
    "Conv1D": lambda l: f"{l.activation.name}(sum_j x[t*{l.strides[0]} + j*{l.dilation_rate[0]}] "
                        "@ kernel[j]" + (" + bias)" if l.use_bias else ")"),
    "MaxPooling1D": lambda l: f"max of x over the window of {l.pool_size[0]} steps",
    "AveragePooling1D": lambda l: f"mean of x over the window of {l.pool_size[0]} steps",
    "GlobalMaxPooling1D": lambda l: "max_t x_t",
    "GlobalAveragePooling1D": lambda l: "mean_t x_t (over the unmasked steps)",
    "LayerNormalization": lambda l: "(x - mean(x)) / sqrt(var(x) + epsilon) * gamma + beta",
    "BatchNormalization": lambda l: ("(x - moving_mean) / sqrt(moving_variance + epsilon) "
                                     "* gamma + beta   (inference)"),
    "GroupNormalization": lambda l: ("(x - mean_g(x)) / sqrt(var_g(x) + epsilon) * gamma + beta"
                                     ", per group g"),
    "UnitNormalization": lambda l: "x / sqrt(sum(x * x))",
    "ReLU": lambda l: "relu(x)", "LeakyReLU": lambda l: "x if x > 0 else negative_slope * x",
    "ELU": lambda l: "x if x > 0 else alpha * (exp(x) - 1)",
    "PReLU": lambda l: "x if x > 0 else alpha * x", "Softmax": lambda l: "softmax(x)",
    "Attention": lambda l: "w @ v,  w = softmax(score(q_t, k))",
    "AdditiveAttention": lambda l: "w @ v,  w = softmax(sum_d scale_d tanh(q_t + k)_d)",
    "MultiHeadAttention": lambda l: ("concat_h(w_h @ V_h) @ Wo + bo,  "
                                     "w_h = softmax(Q_t,h K_h^T / sqrt(key_dim))"),
    **{k: (lambda l: "x   (the identity at inference)") for k in (
        "GaussianNoise", "GaussianDropout", "SpatialDropout1D", "ActivityRegularization")},
}


def _companion(lt, kind, t, sample, units, digits):
    s = lt.check_sample(sample)
    out = np.asarray(lt["output" if "output" in lt else "output_0"][s])
    when, t_idx = "", None
    if out.ndim >= 2:                               # the output has a time axis: pick step t
        T = out.shape[0]
        t_idx = T - 1 if t is None else t
        if not isinstance(t_idx, (int, np.integer)) or isinstance(t_idx, bool) or not -T <= t_idx < T:
            raise ValueError(f"Time step t={t!r} is out of range: the output of layer "
                             f"'{lt.name}' has {T} steps, so t must be an integer in "
                             f"[0, {T - 1}] (or [-{T}, -1] from the end).")
        t_idx = int(t_idx) % T
        out, when = out[t_idx], f", output step t={t_idx} of {T}"
    elif t not in (None, 0, -1):
        raise ValueError(f"Layer '{lt.name}' gives no time axis (its output is {out.shape} "
                         "per sample); pass t=None.")
    y = out.reshape(-1)
    u = _select_units(units, y.size)
    lines = []
    if "weights" in lt and t_idx is not None:
        w = np.asarray(lt["weights"][s, t_idx])
        rows = [("w", w)] if w.ndim == 1 else [(f"w[head {h}]", r) for h, r in enumerate(w)]
        keys = w.shape[-1]
        cut = "" if keys <= 2 * _MAX_SHOWN else f" (keys 0-{2 * _MAX_SHOWN - 1} of {keys})"
        lines += [Line(name + cut, "", "", r[:2 * _MAX_SHOWN]) for name, r in rows]
    lines.append(Line("y", COMPANIONS[kind](lt.layer), "", y[u]))
    shown = f"units {[int(i) for i in u]}" if len(u) < y.size else f"all {y.size} units"
    title = f"{type(lt.layer).__name__} '{lt.name}'{when}, sample {s}, {shown}"
    return Equations(title, lines, u, digits)
