"""Pictures of a trace, a gradient flow, a training history and a forecast.

Each function returns a ``matplotlib.figure.Figure`` (made without pyplot, so no window
opens and no global state changes; a notebook shows it, ``fig.savefig(path)`` saves it).
matplotlib is imported inside: ``pip install unrolled[explain]``.
"""
import numpy as np

from ..layers import registry
from .readable import TOP_UNITS, tick_values, top_units, units_caption
from .trace import LayerTrace, Trace

_LOCATOR = []


def _integer_ticks(axis, lo=None, hi=None):
    """Label ``axis`` at integer positions thinned to fit its drawn length (``tick_values``),
    measured when the figure is drawn, after the layout; ``lo``/``hi`` bound the labels to
    the data (a line plot's margins are not time steps)."""
    if not _LOCATOR:
        from matplotlib.ticker import Locator

        class SpacedIntegers(Locator):
            """Integer ticks, as many as the axis has room for at draw time."""

            def __init__(self, vertical, lo, hi):
                self.vertical, self.lo, self.hi = vertical, lo, hi

            def __call__(self):
                return self.tick_values(*self.axis.get_view_interval())

            def tick_values(self, vmin, vmax):
                vmin, vmax = sorted((vmin, vmax))                # an inverted axis too
                vmin = vmin if self.lo is None else max(vmin, self.lo)
                vmax = vmax if self.hi is None else min(vmax, self.hi)
                box = self.axis.axes.get_window_extent()
                size = (box.height if self.vertical else box.width) / self.axis.axes.figure.dpi
                return tick_values(vmin, vmax, size, self.vertical)

        _LOCATOR.append(SpacedIntegers)
    axis.set_major_locator(_LOCATOR[0](axis.axis_name == "y", lo, hi))


def _figure(width, height):
    from ..optional import require
    Figure = require("matplotlib.figure", "Plotting").Figure

    return Figure(figsize=(width, height), layout="constrained")


def _pick(tr, layer):
    """The LayerTrace to draw: ``layer`` by name, or the first recurrent layer."""
    if isinstance(tr, LayerTrace):
        return tr
    if not isinstance(tr, Trace):
        raise TypeError(f"Expected a Trace from unrolled.explain.trace(); received {type(tr).__name__}.")
    if layer is not None:
        return tr[layer]
    if not tr.recurrent:
        raise ValueError("This trace has no recurrent layer to draw.")
    return tr.recurrent[0]


def _heatmap(fig, ax, values, title, cmap="RdBu_r", limits=None):
    """``values`` (T, units) drawn as units x time."""
    if limits is None:
        top = float(np.abs(values).max()) or 1.0
        limits = (-top, top)
    im = ax.imshow(values.T, aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1],
                   interpolation="nearest", origin="lower")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("time step t")
    ax.set_ylabel("unit")
    _integer_ticks(ax.xaxis)
    _integer_ticks(ax.yaxis)
    fig.colorbar(im, ax=ax, shrink=0.9)
    return im


def _unit_lines(ax, values, quantity, top):
    """``values`` (T, units): the ``top`` units with the largest max |value| as lines, with a
    legend of their indices and a title that says which units these are."""
    idx = top_units(values, top)
    for u in idx:
        ax.plot(values[:, u], lw=1.1, label=str(int(u)))
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("time step t")
    ax.set_title(f"{quantity} per unit: {units_caption(len(idx), values.shape[1], quantity)}",
                 fontsize=10)
    _integer_ticks(ax.xaxis, 0, values.shape[0] - 1)
    ax.legend(title="unit", fontsize=7, title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=1 + len(idx) // 12)
    return idx


def plot_hidden_states(tr, layer=None, sample=0, quantity="h", top=TOP_UNITS):
    """``h`` (or another ``quantity``) of one sample: a heatmap of every unit (units down,
    time across) and, as lines with a legend, the ``top`` units with the largest max |h|
    (all of them when the layer has at most ``top``; the panel's title says which)."""
    lt = _pick(tr, layer)
    s = lt.check_sample(sample)
    values = np.asarray(lt[quantity][s], float)
    fig = _figure(10, 3)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=(1.15, 1))
    order = " (processed backwards)" if lt.go_backwards else ""
    _heatmap(fig, ax1, values, f"{lt.name}: {quantity} over time, sample {s}{order}")
    _unit_lines(ax2, values, quantity, top)
    return fig


def plot_gates(tr, layer=None, sample=0):
    """One heatmap per gate (LSTM i f g o, GRU z r hh) of one sample."""
    lt = _pick(tr, layer)
    entry = registry.of_kind(lt.kind)                  # the cell registry names the gates
    if entry is None or not entry.gates:
        raise ValueError(f"Layer '{lt.name}' is a {lt.kind}, which has no gates; "
                         "plot_hidden_states shows its h.")
    s = lt.check_sample(sample)
    gates = entry.gates
    fig = _figure(3.2 * len(gates), 3)
    axes = fig.subplots(1, len(gates))
    for ax, (name, label) in zip(axes, gates):
        vals = np.asarray(lt[name][s], float)
        bounded = name not in ("g", "hh")                  # sigmoid gates live in [0, 1]
        _heatmap(fig, ax, vals, f"{label}", cmap="viridis" if bounded else "RdBu_r",
                 limits=(0, 1) if bounded else None)
    fig.suptitle(f"{lt.name}: gate activations, sample {s}", fontsize=11)
    return fig


def plot_cell_state(tr, layer=None, sample=0, top=TOP_UNITS):
    """The LSTM cell state ``c`` of one sample: a heatmap of every unit and, as lines, the
    ``top`` units with the largest max |c| (all of them when there are at most ``top``)."""
    lt = _pick(tr, layer)
    if "c" not in lt:
        raise ValueError(f"Layer '{lt.name}' ({lt.kind}) has no cell state; only LSTM has one.")
    s = lt.check_sample(sample)
    c = np.asarray(lt["c"][s], float)
    fig = _figure(10, 3)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=(1.15, 1))
    _heatmap(fig, ax1, c, f"{lt.name}: cell state c, sample {s}")
    _unit_lines(ax2, c, "c", top)
    return fig


def attention_traces(tr):
    """The traces of the attention layers (those that recorded ``weights``), in graph order."""
    return [lt for lt in tr if "weights" in lt]


def plot_attention(tr, layer=None, sample=0, max_heads=8):
    """The attention weights of one sample as a query x key heat map (one per head, at most
    ``max_heads``, for MultiHeadAttention): row ``t`` is how query step ``t`` spreads its
    weight (after the softmax, summing to 1) over the key steps."""
    if isinstance(tr, LayerTrace):
        lt = tr
    elif not isinstance(tr, Trace):
        raise TypeError(f"Expected a Trace from unrolled.explain.trace(); received {type(tr).__name__}.")
    elif layer is not None:
        lt = tr[layer]
    else:
        found = attention_traces(tr)
        if not found:
            raise ValueError("This trace has no attention layer (Attention, AdditiveAttention, "
                             "MultiHeadAttention) to draw.")
        lt = found[0]
    if "weights" not in lt:
        raise ValueError(f"Layer '{lt.name}' ({lt.kind}) recorded no attention weights.")
    s = lt.check_sample(sample)
    w = np.asarray(lt["weights"][s], float)
    heads = [w] if w.ndim == 2 else [w[:, h] for h in range(min(w.shape[1], max_heads))]
    cols = min(len(heads), 4)                 # at most four maps in a row
    rows = -(-len(heads) // cols)
    fig = _figure(1.0 + 4.2 * cols, (4.2 if len(heads) == 1 else 3.8) * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[len(heads):]:
        ax.remove()
    axes = axes[:len(heads)]
    top = float(w.max()) or 1.0               # one colour scale for every head
    for k, (ax, wk) in enumerate(zip(axes, heads)):
        im = ax.imshow(wk, aspect="auto", cmap="viridis", vmin=0.0, vmax=top,
                       interpolation="nearest", origin="upper")
        _integer_ticks(ax.xaxis)
        _integer_ticks(ax.yaxis)
        ax.set_xlabel("key step")
        ax.set_ylabel("query step")
        if len(heads) > 1:
            ax.set_title(f"head {k}", fontsize=10)
    fig.colorbar(im, ax=list(axes), shrink=0.9, label="attention weight")
    more = (f" (first {len(heads)} of {w.shape[1]} heads)"
            if w.ndim == 3 and w.shape[1] > len(heads) else "")
    fig.suptitle(f"{lt.name}: attention weights, query x key, sample {s}{more}", fontsize=11)
    return fig


def plot_gradient_flow(flow):
    """|dLoss/dh_t| over t (log scale) and the step Jacobians' spectral norms."""
    fig = _figure(10, 3.4)
    ax1, ax2 = fig.subplots(1, 2)
    for lf in flow:
        ax1.semilogy(np.maximum(lf.norm, 1e-30), marker="o", ms=3, label=lf.name)
        if lf.jacobian_norm is not None:
            mean = lf.jacobian_norm.mean(axis=0)
            line, = ax2.plot(mean, marker="o", ms=3, label=lf.name)
            ax2.fill_between(np.arange(lf.steps), lf.jacobian_norm.min(axis=0),
                             lf.jacobian_norm.max(axis=0), color=line.get_color(), alpha=0.15)
    ax1.set_title("|dLoss/dh_t|: the gradient reaching each step", fontsize=10)
    ax1.set_xlabel("time step t")
    ax2.axhline(1.0, color="0.5", ls="--", lw=0.8)
    ax2.set_title("spectral norm of d(state_t)/d(state_t-1)", fontsize=10)
    ax2.set_xlabel("time step t")
    for ax in (ax1, ax2):
        _integer_ticks(ax.xaxis, 0, max(lf.steps for lf in flow) - 1)
        ax.legend(fontsize=8)
    return fig


def plot_history(history, keys=None):
    """Training curves from a ``History`` (or its ``history`` dict): one line per key."""
    hist = getattr(history, "history", history)
    if not isinstance(hist, dict) or not hist:
        raise ValueError("plot_history expects a History from model.fit (or its non-empty "
                         f"history dict); received {type(history).__name__}.")
    keys = list(hist) if keys is None else list(keys)
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    for k in keys:
        ax.plot(np.arange(1, len(hist[k]) + 1), hist[k], marker="o", ms=2, label=k)
    vals = np.concatenate([np.ravel(hist[k]) for k in keys]).astype(float)
    if np.all(vals > 0) and vals.max() / vals.min() > 50:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    _integer_ticks(ax.xaxis, 1, max(len(hist[k]) for k in keys))
    ax.set_title("training curves", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_forecast(y_true, y_pred, title="forecast against the truth", index=None):
    """The predicted series over the true one (first three output columns at most; the
    title says how many there are when there are more)."""
    yt = np.asarray(y_true, float).reshape(len(y_true), -1)
    yp = np.asarray(y_pred, float).reshape(len(y_pred), -1)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has shape {yt.shape} and y_pred {yp.shape}; they must match.")
    idx = np.arange(len(yt)) if index is None else np.asarray(index)
    fig = _figure(8, 3.2)
    ax = fig.subplots()
    for k in range(min(3, yt.shape[1])):
        suffix = f" [{k}]" if yt.shape[1] > 1 else ""
        line, = ax.plot(idx, yt[:, k], lw=1.6, label=f"truth{suffix}")
        ax.plot(idx, yp[:, k], lw=1.2, ls="--", color=line.get_color(), label=f"prediction{suffix}")
    if yt.shape[1] > 3:
        title = f"{title}, output columns 0-2 of {yt.shape[1]}"
    if index is None:
        _integer_ticks(ax.xaxis, 0, len(yt) - 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def figure_png(fig, dpi=80):
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
