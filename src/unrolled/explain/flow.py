"""``gradient_flow(model, x, y)``: how dLoss/dh_t grows or fades as BPTT walks back in time.

Two measurements per recurrent layer, both from the real passes:

``dh`` and ``norm``
    dLoss/dh_t for every step: what the cell's ``step_backward`` receives during the
    model's ordinary backward pass (``dout + dstates[0]``: the gradient from the step's
    output plus the one carried back from step t+1). ``norm[t]`` is its Euclidean norm
    over the batch and the units. Vanishing gradients show as ``norm`` falling by orders
    of magnitude towards the first processed step; exploding ones as it rising.
``jacobian_norm``
    the spectral norm (largest singular value) of the step Jacobian
    ``d(states_t)/d(states_{t-1})`` for every sample and step: one row of it per call of
    ``step_backward`` on the recorded cache with a unit vector as dstates. For LSTM the
    states are ``[h, c]``, so the cell-state path that keeps gradients alive is included.
    Back-propagated gradients shrink at most by the product of these norms, so values
    below 1 step after step mean vanishing gradients. At a masked step the loop carries
    the states over: that Jacobian is the identity (norm 1), and the cell sees no gradient.
    In a stack of cells each cell's Jacobian is that of its own states.

``RNN.backward`` keeps no per-step gradients, so ``step_backward`` is listened to during
the backward pass (``recording.record_calls``); an optional ``on_step`` hook in the loop
would make that unnecessary.
"""
import numpy as np

from ..fast import kernels
from .recording import cells_of, is_recurrent, recording_steps


class LayerFlow:
    """Gradient flow through one recurrent layer; arrays in real time order (t=0 first)."""

    def __init__(self, name, layer, cell, dh, jacobian_norm, go_backwards):
        self.name, self.layer, self.cell = name, layer, cell
        self.dh = dh                                   # (B, T, units)
        self.norm = np.sqrt((dh.astype(np.float64) ** 2).sum(axis=(0, 2)))   # (T,)
        self.jacobian_norm = jacobian_norm             # (B, T) or None
        self.go_backwards = go_backwards

    @property
    def steps(self):
        return self.dh.shape[1]

    def ratio(self):
        """norm at the first processed step / norm at the last: < 1 means the gradient faded."""
        first, last = (-1, 0) if self.go_backwards else (0, -1)
        return float(self.norm[first] / self.norm[last]) if self.norm[last] > 0 else float("nan")

    def describe(self):
        r = self.ratio()
        if self.jacobian_norm is None:
            jac = ""
        else:
            g = float(np.exp(np.mean(np.log(np.maximum(self.jacobian_norm, 1e-30)))))
            jac = (f"\n  step Jacobian spectral norm: geometric mean {g:.3g}, "
                   f"max {self.jacobian_norm.max():.3g}")
        trend = ("vanishing" if r < 1e-2 else "exploding" if r > 1e2 else "neither vanishing "
                 "nor exploding") if np.isfinite(r) else "no gradient reached the layer"
        return (f"{self.name}:\n  |dL/dh_t| from {self.norm.min():.3g} to {self.norm.max():.3g}"
                f"\n  first/last processed step ratio {r:.3g} ({trend}){jac}")

    def __repr__(self):
        return f"<LayerFlow {self.describe()}>"


class GradientFlow:
    """``flow["lstm"]`` is a ``LayerFlow``; ``loss`` is the loss value on (x, y)."""

    def __init__(self, loss, layers):
        self.loss = loss
        self.layers = {lf.name: lf for lf in layers}

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return list(self.layers.values())[key]
        if key not in self.layers:
            raise KeyError(f"No recurrent layer {key!r}; this flow has {list(self.layers)}.")
        return self.layers[key]

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self):
        return len(self.layers)

    def describe(self):
        return "\n".join([f"loss = {self.loss:.6g}"] + [lf.describe() for lf in self])

    def __repr__(self):
        return f"<GradientFlow\n{self.describe()}\n>"


def step_jacobian(cell, cache):
    """``J[b, j, i] = d state_t[j] / d state_{t-1}[i]`` for one step, states concatenated.

    Row j is what ``step_backward`` returns for a unit vector e_j as dLoss/d(new states)
    and no gradient on the output.
    """
    first = next(a for a in cache if isinstance(a, np.ndarray) and a.ndim >= 2)
    B, dtype = first.shape[-2], first.dtype
    sizes = list(cell.state_size)
    rows = []
    for k, size in enumerate(sizes):                      # state k, unit j: one row of J
        for j in range(size):
            dstates = [np.zeros((B, s), dtype) for s in sizes]
            dstates[k][:, j] = 1
            fresh = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in cache)
            # (a copy each time: a compiled step_backward writes gradients over its cache)
            _, dprev = cell.step_backward(fresh, np.zeros((B, cell.output_size), dtype), dstates)
            rows.append(np.concatenate(dprev, axis=1))
    return np.stack(rows, axis=1)                         # (B, S, S)


def _layer_flows(rnn, cache, blogs, name, jacobians):
    xs, m, _dp, caches, _n, shape = cache
    B, T = shape[0], len(caches)
    cells = cells_of(rnn.cell)
    out = []
    for k, cell in enumerate(cells):
        by_cache = {id(args[0]): args for args, _ in blogs[id(cell)]}
        step_caches = [c if len(cells) == 1 else c[k][1] for c in caches]
        dh = np.zeros((T, B, cell.output_size), xs.dtype)
        for t, c in enumerate(step_caches):
            if id(c) in by_cache:                          # the backward pass reached step t
                _c, dout, dstates = by_cache[id(c)]
                dh[t] = dout + dstates[0]                  # dLoss/dh_t, as step_backward sums it
        jn = None
        if jacobians:
            jn = np.empty((T, B))
            for t, c in enumerate(step_caches):
                jn[t] = np.linalg.svd(step_jacobian(cell, c).astype(np.float64), compute_uv=False)[:, 0]
                if m is not None:
                    jn[t][~m[t]] = 1.0                     # a masked step carries the states over
        dh = dh.transpose(1, 0, 2)
        if rnn.go_backwards:
            dh, jn = dh[:, ::-1], None if jn is None else jn[::-1]
        lname = name if len(cells) == 1 else f"{name}/cell_{k}"
        out.append(LayerFlow(lname, rnn, cell, np.ascontiguousarray(dh),
                             None if jn is None else np.ascontiguousarray(jn.T), rnn.go_backwards))
    return out


def gradient_flow(model, x, y, loss=None, jacobians=True):
    """dLoss/dh_t over time for every recurrent layer of ``model`` on ``(x, y)``.

    ``loss``: a loss name or object; default the compiled loss. ``jacobians=False`` skips
    the step Jacobians (one ``step_backward`` call per state unit and step).
    """
    from .. import losses
    from ..models.checks import check_xy

    if not hasattr(model, "_nodes"):
        raise TypeError(f"gradient_flow expects an unrolled Model or Sequential; received "
                        f"{type(model).__name__}.")
    loss_fn = losses.get(loss) if loss is not None else model.loss
    if loss_fn is None:
        raise ValueError("gradient_flow needs a loss: compile the model "
                         "(model.compile(loss='mse')) or pass loss='mse'.")
    xs, ys = check_xy(model, x, y)
    with kernels.unfused(), recording_steps(model, "step_backward") as blogs:
        # the output mask weighs the loss as in training (Keras's y_pred._keras_mask)
        y_pred, tape, mask = model._run_graph(model._pack(xs), False, keep_tape=True)
        value = float(loss_fn(ys, y_pred, mask=mask))
        model.backward(tape, loss_fn.gradient(ys, y_pred, mask=mask))   # the ordinary backward pass
    flows = []
    for node, cache in tape:
        layer = node.layer
        if is_recurrent(layer):
            flows += _layer_flows(layer, cache, blogs, layer.name, jacobians)
        elif hasattr(layer, "forward_layer"):
            for sub, sub_cache in ((layer.forward_layer, cache[0]), (layer.backward_layer, cache[1])):
                flows += _layer_flows(sub, sub_cache, blogs, f"{layer.name}/{sub.name}", jacobians)
    if not flows:
        raise ValueError(f"Model '{model.name}' has no recurrent layer (SimpleRNN, LSTM, GRU, "
                         "RNN or Bidirectional) whose gradient flow could be shown.")
    return GradientFlow(value, flows)


__all__ = ["GradientFlow", "LayerFlow", "gradient_flow", "step_jacobian"]
