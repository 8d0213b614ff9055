"""``equations(layer, x, t)``: a layer's equations at one time step, with its numbers in them.

Each line is an equation of the cell's docstring, then the same equation with the values
of this step substituted, then the result::

    f  = sigmoid(zf)  = sigmoid([0.4213, -1.0187])  = [0.6038, 0.2653]
    c  = f * c_prev + i * g  = [0.6038, 0.2653] * [...] + ...  = [...]

The results are read from the trace (the real forward pass); only the split of a
pre-activation into its input, recurrent and bias parts (``x_t @ kernel_i`` and
``h_prev @ recurrent_kernel_i``) is multiplied out here, to show where the sum comes from.
``str(eq)`` is plain text; in a notebook the object shows as HTML (``_repr_html_``) or
LaTeX (``_repr_latex_``).
"""
import html
import re

import numpy as np

from .trace import LayerTrace, trace

SUPPORTED = ("SimpleRNN", "LSTM", "GRU", "Dense")
_MAX_SHOWN = 6


class Line:
    """``lhs = formula = substituted = result`` (``substituted`` may be empty)."""

    def __init__(self, lhs, formula, substituted, result):
        self.lhs, self.formula, self.substituted = lhs, formula, substituted
        self.result = np.asarray(result)


class Equations:
    """A layer's equations at one step: ``lines`` (each with ``lhs``, ``formula``,
    ``substituted`` and ``result``), ``values`` (lhs -> result vector, shown units only)."""

    def __init__(self, title, lines, units, digits):
        self.title, self.lines, self.units, self.digits = title, lines, units, digits
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
            rhs = " &= ".join(to_tex(p) for p in parts if p != result)
            body.append(f"{to_tex(lhs)} &= {rhs + ' &= ' if rhs else ''}{to_tex(result)}")
        title = self.title.replace("_", r"\_").replace("'", "")
        return (f"$$\\text{{{title}}}$$\n$$\\begin{{aligned}}\n" + " \\\\\n".join(body)
                + "\n\\end{aligned}$$")


def vec(v, digits=4):
    """A vector as ``[0.1234, -0.5678]``."""
    v = np.atleast_1d(np.asarray(v, dtype=float))
    return "[" + ", ".join(f"{a:.{digits}f}" for a in v) + "]"


_TEX = {"h_prev": "h_{t-1}", "c_prev": "c_{t-1}", "x_t": "x_t", "sigmoid": r"\sigma",
        "tanh": r"\tanh", "hh": r"\tilde{h}", "tc": r"\tanh(c)", "zi": "z_i", "zf": "z_f",
        "zc": "z_c", "zo": "z_o", "az": "a_z", "ar": "a_r", "ah": "a_h", "rh": "r_h",
        "recurrent_kernel": "U", "kernel": "W", "bias": "b",
        "hard_sigmoid_keras2": r"\mathrm{hard\_sigmoid}_{\mathrm{K2}}",
        "hard_sigmoid": r"\mathrm{hard\_sigmoid}"}


def to_tex(text):
    """The plain form of an equation as LaTeX: names with subscripts, ``*`` as ``\\odot``."""
    text = re.sub(r"\b(recurrent_kernel|kernel|bias)(\[\d\])?_(\w)\b",
                  lambda m: f"{_TEX[m.group(1)]}{'^{(' + m.group(2)[1] + ')}' if m.group(2) else ''}_{m.group(3)}",
                  text)
    text = re.sub(r"\b(h_prev|c_prev|x_t|hard_sigmoid_keras2|hard_sigmoid|sigmoid|tanh|hh|tc|zi|zf|zc|zo|az|ar|ah|rh|"
                  r"recurrent_kernel|kernel|bias)\b", lambda m: _TEX[m.group(1)], text)
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


def _check_kind(layer):
    name = type(getattr(layer, "cell", None) or layer).__name__.removesuffix("Cell")
    if name not in SUPPORTED and name not in COMPANIONS:
        raise TypeError(f"equations knows {', '.join(SUPPORTED + tuple(COMPANIONS))}; "
                        f"layer '{layer.name}' is a "
                        f"{type(layer).__name__}"
                        + (f" with a {type(layer.cell).__name__}" if hasattr(layer, "cell") else "")
                        + ". Explain its sub-layers one by one instead.")
    return name


def equations(layer, x=None, t=None, sample=0, units=None, digits=4):
    """The equations of ``layer`` at time step ``t`` (default: the last) for one ``sample``.

    ``layer``: a SimpleRNN, LSTM, GRU (either ``reset_after``) or Dense layer with its input
    ``x``, or a ``LayerTrace`` from ``trace(model, x)`` (then ``x`` is not needed).
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
    lines = _BUILDERS[kind](owner, v, u, digits)
    return Equations(title, lines, u, digits)


def _w(owner, name):
    w = getattr(owner, name, None)
    return None if w is None else w.value


def _parts(owner, v, block, u, n_blocks=1, h=None):
    """``x_t @ kernel`` and ``h @ recurrent_kernel`` restricted to ``block``'s units ``u``."""
    m = owner.units
    cols = block * m + u
    xk = v["x"] @ _w(owner, "kernel")[:, cols]
    hk = (v["h_prev"] if h is None else h) @ _w(owner, "recurrent_kernel")[:, cols]
    return xk, hk, cols


def _inputs(v, u, digits, c=False):
    lines = [Line("x_t", "", "", v["x"]), Line("h_prev", "", "", v["h_prev"][u])]
    if c:
        lines.append(Line("c_prev", "", "", v["c_prev"][u]))
    return lines


def _simple_rnn(cell, v, u, d):
    xk, hk, cols = _parts(cell, v, 0, u)
    b = _w(cell, "bias")
    terms, formula = [xk, hk], "x_t @ kernel + h_prev @ recurrent_kernel"
    if b is not None:
        terms.append(b[cols])
        formula += " + bias"
    act = cell.activation.name
    return _inputs(v, u, d) + [
        Line("a", formula, " + ".join(vec(a, d) for a in terms), v["a"][u]),
        Line("h", f"{act}(a)", f"{act}({vec(v['a'][u], d)})", v["h"][u]),
    ]


def _lstm(cell, v, u, d):
    lines = _inputs(v, u, d, c=True)
    b = _w(cell, "bias")
    for k, (z, g) in enumerate(zip(("zi", "zf", "zc", "zo"), "ifco")):
        xk, hk, cols = _parts(cell, v, k, u)
        terms = [xk, hk] + ([b[cols]] if b is not None else [])
        formula = f"x_t @ kernel_{g} + h_prev @ recurrent_kernel_{g}" + (f" + bias_{g}" if b is not None else "")
        lines.append(Line(z, formula, " + ".join(vec(a, d) for a in terms), v[z][u]))
    ra, act = cell.recurrent_activation.name, cell.activation.name
    for gate, z, fn in (("i", "zi", ra), ("f", "zf", ra), ("g", "zc", act), ("o", "zo", ra)):
        lines.append(Line(gate, f"{fn}({z})", f"{fn}({vec(v[z][u], d)})", v[gate][u]))
    f, i, g, o, cp = (v[k][u] for k in ("f", "i", "g", "o", "c_prev"))
    lines += [
        Line("c", "f * c_prev + i * g", f"{vec(f, d)} * {vec(cp, d)} + {vec(i, d)} * {vec(g, d)}", v["c"][u]),
        Line("tc", f"{act}(c)", f"{act}({vec(v['c'][u], d)})", v["tc"][u]),
        Line("h", "o * tc", f"{vec(o, d)} * {vec(v['tc'][u], d)}", v["h"][u]),
    ]
    return lines


def _gru(cell, v, u, d):
    lines = _inputs(v, u, d)
    b = _w(cell, "bias")
    after = cell.reset_after
    for k, (a, g) in enumerate((("az", "z"), ("ar", "r"))):
        xk, hk, cols = _parts(cell, v, k, u)
        terms, formula = [xk, hk], f"x_t @ kernel_{g} + h_prev @ recurrent_kernel_{g}"
        if b is not None:
            terms += [b[0][cols], b[1][cols]] if after else [b[cols]]
            formula += f" + bias[0]_{g} + bias[1]_{g}" if after else f" + bias_{g}"
        lines.append(Line(a, formula, " + ".join(vec(x, d) for x in terms), v[a][u]))
    ra, act = cell.recurrent_activation.name, cell.activation.name
    lines += [Line("z", f"{ra}(az)", f"{ra}({vec(v['az'][u], d)})", v["z"][u]),
              Line("r", f"{ra}(ar)", f"{ra}({vec(v['ar'][u], d)})", v["r"][u])]
    if after:
        xk, hk, cols = _parts(cell, v, 2, u)
        rh_terms = [hk] + ([b[1][cols]] if b is not None else [])
        lines.append(Line("rh", "h_prev @ recurrent_kernel_h" + (" + bias[1]_h" if b is not None else ""),
                          " + ".join(vec(x, d) for x in rh_terms), v["rh"][u]))
        x_terms = [xk] + ([b[0][cols]] if b is not None else [])
        formula = "x_t @ kernel_h" + (" + bias[0]_h" if b is not None else "") + " + r * rh"
        sub = " + ".join(vec(x, d) for x in x_terms) + f" + {vec(v['r'][u], d)} * {vec(v['rh'][u], d)}"
    else:
        xk, hk, cols = _parts(cell, v, 2, u, h=v["r"] * v["h_prev"])   # (r * h_prev) @ U_h
        terms = [xk, hk] + ([b[cols]] if b is not None else [])
        formula = "x_t @ kernel_h + (r * h_prev) @ recurrent_kernel_h" + (" + bias_h" if b is not None else "")
        sub = " + ".join(vec(x, d) for x in terms)
    z, hp, hh = v["z"][u], v["h_prev"][u], v["hh"][u]
    lines += [Line("ah", formula, sub, v["ah"][u]),
              Line("hh", f"{act}(ah)", f"{act}({vec(v['ah'][u], d)})", hh),
              Line("h", "z * h_prev + (1 - z) * hh",
                   f"{vec(z, d)} * {vec(hp, d)} + (1 - {vec(z, d)}) * {vec(hh, d)}", v["h"][u])]
    return lines


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


_BUILDERS = {"SimpleRNN": _simple_rnn, "LSTM": _lstm, "GRU": _gru, "Dense": _dense}


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
