"""``report(model, x, y)``: one self-contained HTML page that explains a model on data.

The page holds the summary, every layer's equations with the numbers of chosen steps,
the traced values at those steps, pictures of the states and gates, the gradient flow
(with targets ``y``), and the generated NumPy program for small models. Pictures are PNGs
inside the file (base64 ``data:`` URIs); there are no scripts, fonts or links to
fetch, so the file opens offline and can be mailed as it is.

It stays readable for big layers (``readable``): tables sit in containers that scroll
sideways instead of widening the page, long input vectors are cut to their first values
with their length, tick labels are thinned to the room they have, and the per-unit line
plots draw the units with the largest magnitude, which their captions name.
"""
import base64
import html

import numpy as np

from .equations import COMPANIONS, equations, has_equations, vec
from .readable import TOP_UNITS, elide, top_units, units_caption
from .trace import trace

MAX_CODE_PARAMS = 5000

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
h3 { margin-top: 1.5em; } .note { color: #555; font-size: 0.92em; }
pre, code, table.equations, table.trace { font-family: Menlo, Consolas, "DejaVu Sans Mono", monospace;
       font-size: 12.5px; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; border-radius: 4px; line-height: 1.2; }
.equations { overflow-x: auto; margin: 0.6em 0 1.2em 0; }
.equations .title { font-weight: 600; margin: 0.3em 0; }
table.equations td, table.equations th { padding: 1px 8px; white-space: nowrap; text-align: left; }
table.equations td.result { color: #0b5394; font-weight: 600; white-space: normal;
       overflow-wrap: anywhere; min-width: 16em; }
table.equations tr.sub td { color: #666; white-space: normal; padding-bottom: 4px; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1em 0; }
table.trace { border-collapse: collapse; }
table.trace th, table.trace td { border: 1px solid #ddd; padding: 2px 8px; white-space: nowrap; }
table.trace th { background: #f0f0f0; }
table.trace td.long { white-space: normal; min-width: 14em; }
table.trace tr > th:first-child { position: sticky; left: 0; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
figure { margin: 0.5em 0 1.2em 0; max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; }
details summary { cursor: pointer; font-weight: 600; }
"""


def _e(text):
    return html.escape(str(text))


def _img(fig, alt, caption=None):
    """The figure as an inline PNG, inside a ``<figure>`` with its caption if given."""
    from .plots import figure_png

    data = base64.b64encode(figure_png(fig)).decode()
    img = f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"
    if caption is None:
        return img
    return f"<figure>{img}<figcaption>{_e(caption)}</figcaption></figure>"


def _lines_caption(values, quantity):
    """What the per-unit panel of a (T, units) picture draws."""
    idx = top_units(values, TOP_UNITS)
    which = units_caption(len(idx), values.shape[1], quantity)
    listed = f": units {[int(i) for i in idx]}" if len(idx) < values.shape[1] else ""
    return f"Left: every unit as a heat map; right: {which}{listed}, one line each."


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _trace_table(lt, steps, sample, units, digits=4):
    """Rows: the traced quantities (fused gate vectors left out: their blocks are shown); a
    long input vector is cut to its first values; the table scrolls sideways when wide."""
    head = "".join(f"<th>t = {t}</th>" for t in steps)
    rows = []
    for q in lt.keys():
        if q == "xp" or (q == "z" and lt.kind == "LSTM"):
            continue
        if q in ("x", "mask"):                   # the whole input: cut, and wrapped
            cells = "".join(f"<td class='long'>{_e(elide(lt[q][sample, t], digits, 8))}</td>"
                            for t in steps)
        else:
            cells = "".join(f"<td>{_e(vec(np.atleast_1d(lt[q][sample, t])[units], digits))}</td>"
                            for t in steps)
        rows.append(f"<tr><th>{_e(q)}</th>{cells}</tr>")
    return (f"<div class='scroll'><table class='trace'><tr><th>value</th>{head}</tr>"
            f"{''.join(rows)}</table></div>")


def _layer_section(lt, steps, sample, units):
    from .plots import plot_cell_state, plot_gates, plot_hidden_states

    layer = lt.layer
    kind = type(lt.cell if lt.cell is not None else layer).__name__.removesuffix("Cell")
    out = [f"<h3>{_e(lt.name)} <span class='note'>({_e(type(layer).__name__)})</span></h3>"]
    if lt.recurrent:
        u = np.arange(min(lt.cell.units, 4)) if units is None else np.atleast_1d(units)
        order = ("processed backwards: the loop starts at t = T-1 (go_backwards); steps below "
                 "are in real time order" if lt.go_backwards else "processed forwards, t = 0 first")
        out.append(f"<p class='note'>{lt.steps} steps, {order}. Docstring of the cell: "
                   f"<code>{_e(type(lt.cell).__module__)}.{_e(type(lt.cell).__name__)}</code>.</p>")
        if has_equations(lt):
            for t in steps:
                out.append(equations(lt, t=t, sample=sample, units=u)._repr_html_())
        of = f" of {lt.cell.units}" if len(u) < lt.cell.units else ""
        out.append(f"<p>Traced values of sample {sample} (units {[int(i) for i in u]}{of}):</p>")
        out.append(_trace_table(lt, steps, sample, u))
        h = np.asarray(lt["h"][sample], float)
        out.append(_img(plot_hidden_states(lt, sample=sample), f"{lt.name} hidden states",
                        _lines_caption(h, "h")))
        if lt.kind in ("LSTM", "GRU"):
            out.append(_img(plot_gates(lt, sample=sample), f"{lt.name} gates",
                            f"Every gate of all {lt.cell.units} units, step by step."))
        if "c" in lt:
            c = np.asarray(lt["c"][sample], float)
            out.append(_img(plot_cell_state(lt, sample=sample), f"{lt.name} cell state",
                            _lines_caption(c, "c")))
    elif "weights" in lt:                      # an attention layer: its query x key map
        from .plots import plot_attention

        w = lt["weights"]
        heads = f", {w.shape[2]} heads" if w.ndim == 4 else ""
        out.append(f"<p class='note'>Attention weights of sample {sample} after the softmax: "
                   f"{w.shape[1]} query steps x {w.shape[-1]} key steps{heads}; each row "
                   "sums to 1.</p>")
        out.append(equations(lt, sample=sample)._repr_html_())
        out.append(_img(plot_attention(lt, sample=sample), f"{lt.name} attention weights"))
    elif kind == "Dense":
        t = lt.steps - 1 if lt.time_axis else None
        out.append(equations(lt, t=t, sample=sample, units=units)._repr_html_())
    else:
        shapes = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in lt.values.items())
        out.append(f"<p class='note'>{_e(shapes)}</p>")
        if kind in COMPANIONS:
            out.append(equations(lt, sample=sample)._repr_html_())
    return "\n".join(out)


def _code_section(model):
    from .codegen import to_numpy_code

    if model.count_params() > MAX_CODE_PARAMS:
        return (f"<p class='note'>The model has {model.count_params():,} weights; "
                "<code>unrolled.explain.to_numpy_code(model, weights='npz', path=...)</code> "
                "writes its NumPy program with the weights in a separate file.</p>")
    try:
        code = to_numpy_code(model)
    except ValueError as err:
        return f"<p class='note'>{_e(err)}</p>"
    return ("<details><summary>The whole model as a NumPy program (predict(x) equals "
            f"model.predict(x))</summary><pre>{_e(code)}</pre></details>")


def _default_steps(lt):
    """First, middle and last step of one recurrent layer (layers after a pooling, a
    strided Conv1D or a RepeatVector may run fewer steps than the first one)."""
    T = lt.steps
    return sorted({0, T // 2, T - 1})


def report(model, x, y=None, path="report.html", steps=None, sample=0, loss=None,
           history=None, units=None, title=None):
    """Write the HTML report of ``model`` on ``x`` (and targets ``y``) to ``path``; return ``path``.

    ``steps``: the time steps whose equations and values are shown (default: first, middle,
    last of each recurrent layer, which may run fewer steps than the input has). ``y`` adds the gradient flow and predictions against targets (``loss`` defaults
    to the compiled loss, else mean squared error). ``history`` (from ``fit``) adds the
    training curves. A wrong input shape or step raises a ValueError before anything is
    written.
    """
    import os

    from .flow import gradient_flow
    from .plots import plot_forecast, plot_gradient_flow, plot_history

    if not hasattr(model, "_nodes"):
        raise TypeError(f"report expects an unrolled Model or Sequential; received "
                        f"{type(model).__name__}.")
    tr = trace(model, x)
    chosen = {}                                  # each recurrent layer's steps to show
    for lt in tr.recurrent:
        chosen[lt.name] = (_default_steps(lt) if steps is None
                           else [lt.check_step(t) for t in steps])
        lt.check_sample(sample)
    shown = {tuple(v) for v in chosen.values()}
    shown = list(shown.pop()) if len(shown) == 1 else (
        list(steps or []) if steps is not None or not shown
        else "first, middle and last of each layer")
    first = tr[0].values
    x_shape = np.shape(first.get("input", first.get("x", first.get("input_0"))))
    name = title or f"How '{model.name}' computes its output"
    body = [f"<h1>{_e(name)}</h1>",
            f"<p class='note'>Generated by unrolled.explain.report on an input of shape "
            f"{_e(tuple(x_shape))}; "
            f"sample {sample}, steps {shown}.</p>",
            "<h2>Summary</h2>", f"<pre>{_e(_summary(model))}</pre>",
            "<h2>Layer by layer</h2>",
            "<p class='note'>Each equation is written as in the cell's code, then with the "
            "numbers of this step, then its result (read from the real forward pass).</p>"]
    body += [_layer_section(lt, chosen.get(lt.name, []), sample, units) for lt in tr]
    if y is not None:
        loss_used = loss if loss is not None else (model.loss if getattr(model, "loss", None) else "mse")
        flow = gradient_flow(model, x, y, loss=loss_used)
        body += ["<h2>Gradient flow through time</h2>",
                 "<p class='note'>|dLoss/dh_t| is what backpropagation through time hands each "
                 "step; the spectral norm of the step Jacobian bounds how much it can grow or "
                 "shrink per step (below 1: it fades).</p>",
                 f"<pre>{_e(flow.describe())}</pre>", _img(plot_gradient_flow(flow), "gradient flow")]
        y_pred = np.asarray(tr.outputs) if not isinstance(tr.outputs, list) else None
        if y_pred is not None and np.size(y_pred) == np.size(y):
            body += ["<h2>Predictions against targets</h2>",
                     _img(plot_forecast(y, y_pred, title="model output against the targets "
                                                          "(sample by sample)"), "forecast")]
    if history is not None:
        body += ["<h2>Training</h2>", _img(plot_history(history), "training curves")]
    body += ["<h2>The loop, as code</h2>", _code_section(model)]
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<link rel='icon' href='data:,'><title>{_e(name)}</title><style>{CSS}</style>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    from ..io.atomic import atomic_write

    path = os.fspath(path)
    with atomic_write(path) as f:
        f.write(page.encode("utf-8"))
    return path
