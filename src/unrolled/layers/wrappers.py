"""Wrappers: layers that run another layer in a new way.

``Bidirectional(rnn)`` runs a recurrent layer over the sequence twice, forwards and
backwards, and merges the two results. ``TimeDistributed(layer)`` applies a layer to
every time step of a sequence. Both forward passes call the wrapped layers' ``forward``,
and both backward passes call their ``backward``: a wrapper only adds its own plumbing
(merging, flipping, folding time into the batch) and that plumbing's derivative.
"""
import numpy as np

from ..utils import to_list
from .base import Layer
from .recurrent import CELL_RULES, RNN, StackedRNNCells

MERGE_MODES = ("concat", "sum", "mul", "ave", None)

# Construction arguments our recurrent configs leave out (they live on the cell).
_CELL_ARGS = ("kernel_initializer", "recurrent_initializer", "bias_initializer", "seed",
              *CELL_RULES)


def recreate(obj, **changes):
    """A fresh, unbuilt copy of a layer or cell from its config, with ``changes`` applied.

    Keras re-creates Bidirectional's sub-layers from the wrapped layer's config, so they
    start with weights of their own. Our SimpleRNN/LSTM/GRU configs list units,
    activations and flags but not the initializers and seed, which live on the cell;
    they are read from the cell here, so that the copy is initialized the same way.
    """
    if hasattr(obj, "recreate"):                             # Keras-way cells (custom_cells)
        return obj.recreate(**changes)
    if isinstance(obj, StackedRNNCells):
        config = {k: v for k, v in obj.get_config().items() if k != "cells"}
        return StackedRNNCells([recreate(c) for c in obj.cells], **{**config, **changes})
    config = {**obj.get_config(), **changes}
    if type(obj) is RNN:                                     # RNN(cell): the config has no cell
        return RNN(recreate(obj.cell), **config)
    holder = getattr(obj, "cell", obj)
    for key in _CELL_ARGS:
        if hasattr(holder, key):
            config.setdefault(key, getattr(holder, key))
    return type(obj).from_config(config)


class Bidirectional(Layer):
    """A recurrent layer run forwards and backwards, outputs merged (Keras's ``Bidirectional``).

    The forward layer is re-created from ``layer``'s config (named ``forward_<name>``); the
    backward layer is the same config with ``go_backwards=True`` (``backward_<name>``),
    unless ``backward_layer`` is given. (So, as in Keras, wrapping a layer that already has
    ``go_backwards=True`` is an error: both copies would run backwards.)

    Both read the same input and the same mask. With ``return_sequences`` the backward
    layer's output, which comes out in processing order (last step first), is flipped back
    along time so that step t lines up with step t::

        y     = forward_layer(x)            y_rev = flip(backward_layer(x), axis=1)
        concat: [y, y_rev] on the last axis    sum: y + y_rev    ave: (y + y_rev) / 2
        mul:    y * y_rev                      None: the list [y, y_rev]

    ``return_state`` appends the forward layer's final states, then the backward layer's.
    ``initial_state`` is one list: the forward layer's states, then the backward layer's.
    As in Keras, masked steps output zeros when returning sequences
    (``zero_output_for_mask = return_sequences`` on both layers).

    Weights: the forward layer's, then the backward layer's. ``weights`` (a list in that
    order) is set once the layer is built; Keras 3 accepts the argument but never uses it.
    """

    input_ndim = 3
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, weights=None, **kwargs):
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: merge_mode={merge_mode!r}. Merge mode should be "
                f"one of 'concat', 'sum', 'mul', 'ave' or None."
            )
        needed = ("go_backwards", "return_sequences", "return_state", "cell")
        for what, sub in (("layer", layer), ("backward_layer", backward_layer)):
            if sub is not None and not all(hasattr(sub, a) for a in needed):
                raise ValueError(
                    f"Bidirectional's `{what}` must be a recurrent layer such as SimpleRNN, "
                    f"LSTM, GRU or RNN(cell); received {sub!r}."
                )
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.forward_layer = recreate(layer, name="forward_" + layer.name.removeprefix("forward_"))
        if backward_layer is None:
            name = "backward_" + layer.name.removeprefix("backward_")
            backward_layer = recreate(layer, name=name, go_backwards=True)
        self.backward_layer = backward_layer
        self._check_pair()
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences   # masked steps give zeros
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        self._pending_weights = weights

    def _check_pair(self):
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(
                f"Forward layer and backward layer should have different `go_backwards` values. "
                f"Received: forward_layer.go_backwards={fwd.go_backwards}, "
                f"backward_layer.go_backwards={bwd.go_backwards}."
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(
                    f"Forward layer and backward layer are expected to have the same value for "
                    f"attribute `{attr}`; got {getattr(fwd, attr)} for the forward layer and "
                    f"{getattr(bwd, attr)} for the backward layer."
                )

    # --- weights, shapes and masks -----------------------------------------------------------
    @property
    def weights(self):
        return self.forward_layer.weights + self.backward_layer.weights

    def _sublayers(self):
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape):
        self._feature_size = input_shape[-1]
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(tuple(input_shape))
                sub.built = True
                for w in sub.weights:
                    w.path = f"{self.name}/{w.path}"
        self.built = True
        if self._pending_weights is not None:
            weights, self._pending_weights = self._pending_weights, None
            self.set_weights(weights)

    def _n_states(self):
        return len(self.forward_layer.cell.state_size), len(self.backward_layer.cell.state_size)

    def compute_output_shape(self, input_shape):
        def shapes(sub):
            out = sub.compute_output_shape(input_shape)
            return list(out) if self.return_state else [out]

        (y, *f_states), (y_rev, *b_states) = shapes(self.forward_layer), shapes(self.backward_layer)
        if self.merge_mode is None:
            outputs = [tuple(y), tuple(y_rev)]
        elif self.merge_mode == "concat":
            last = None if None in (y[-1], y_rev[-1]) else y[-1] + y_rev[-1]
            outputs = [tuple(y[:-1]) + (last,)]
        else:
            outputs = [tuple(y)]
        if self.merge_mode is None or self.return_state:
            return outputs + [tuple(s) for s in f_states + b_states]
        return outputs[0]

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, list):
            mask = mask[0]
        out_mask = mask if self.return_sequences else None
        if self.merge_mode is None or self.return_state:
            n_out = 2 if self.merge_mode is None else 1
            return [out_mask] * n_out + [None] * sum(self._n_states())
        return out_mask

    def _check_initial_state_shapes(self, state_shapes, input_shape):
        nf, nb = self._n_states()
        if len(state_shapes) != nf + nb:
            raise ValueError(
                f"Bidirectional layer '{self.name}' expects {nf + nb} initial states: the "
                f"forward layer's {nf}, then the backward layer's {nb}. Received "
                f"{len(state_shapes)}: {[tuple(s) for s in state_shapes]}."
            )
        self.forward_layer._check_initial_state_shapes(state_shapes[:nf], input_shape)
        self.backward_layer._check_initial_state_shapes(state_shapes[nf:], input_shape)

    def reset_state(self):
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    # --- forward and backward ----------------------------------------------------------------
    def forward(self, x, *, training=False, mask=None, initial_state=None):
        if isinstance(mask, list):
            mask = mask[0]
        f_init = b_init = None
        if initial_state is not None:
            states = to_list(initial_state)
            self._check_initial_state_shapes([np.shape(s) for s in states], x.shape)
            nf = self._n_states()[0]
            f_init, b_init = states[:nf], states[nf:]
        y, f_cache = self.forward_layer.forward(x, training=training, mask=mask,
                                                initial_state=f_init)
        y_rev, b_cache = self.backward_layer.forward(x, training=training, mask=mask,
                                                     initial_state=b_init)
        states = []
        if self.return_state:
            (y, *f_states), (y_rev, *b_states) = y, y_rev
            states = f_states + b_states
        if self.return_sequences:
            y_rev = np.ascontiguousarray(y_rev[:, ::-1])   # back to input order
        if self.merge_mode == "concat":
            out = [np.concatenate([y, y_rev], axis=-1)]
        elif self.merge_mode == "sum":
            out = [y + y_rev]
        elif self.merge_mode == "ave":
            out = [(y + y_rev) / 2]
        elif self.merge_mode == "mul":
            out = [y * y_rev]
        else:
            out = [y, y_rev]
        result = out + states if (self.merge_mode is None or self.return_state) else out[0]
        return result, (f_cache, b_cache, y, y_rev)

    def _merge_backward(self, douts, y, y_rev):
        """dLoss/dy and dLoss/dy_rev from dLoss/d(merged output(s)); None stays None."""
        if self.merge_mode is None:
            return douts[0], douts[1]
        d = douts[0]
        if d is None:
            return None, None
        if self.merge_mode == "concat":
            return d[..., :y.shape[-1]], d[..., y.shape[-1]:]  # each half goes back to its source
        if self.merge_mode == "sum":
            return d, d                                        # out = y + y_rev
        if self.merge_mode == "ave":
            return d / 2, d / 2                                # out = (y + y_rev) / 2
        return d * y_rev, d * y                                # out = y * y_rev

    optional_input_gradient = property(lambda self: self.forward_layer.optional_input_gradient
                                       and self.backward_layer.optional_input_gradient)

    def backward(self, cache, doutputs, input_gradient=True):
        f_cache, b_cache, y, y_rev = cache
        multi = self.merge_mode is None or self.return_state
        douts = list(doutputs) if multi else [doutputs]
        n_out = 2 if self.merge_mode is None else 1
        dy, dy_rev = self._merge_backward(douts[:n_out], y, y_rev)
        if self.return_sequences and dy_rev is not None:
            dy_rev = dy_rev[:, ::-1]                           # undo the flip
        if self.return_state:
            nf = self._n_states()[0]
            dstates = douts[n_out:]
            dy, dy_rev = [dy] + dstates[:nf], [dy_rev] + dstates[nf:]
        (dx_f, *dinit_f), dw_f = self.forward_layer.backward(f_cache, dy, input_gradient)
        (dx_b, *dinit_b), dw_b = self.backward_layer.backward(b_cache, dy_rev, input_gradient)
        dx = dx_f + dx_b if input_gradient else None           # both layers read the same x
        return [dx] + dinit_f + dinit_b, dw_f + dw_b

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": {"class_name": type(self.forward_layer).__name__,
                          "config": self.forward_layer.get_config()},
                "backward_layer": {"class_name": type(self.backward_layer).__name__,
                                   "config": self.backward_layer.get_config()}}


class TimeDistributed(Layer):
    """Applies ``layer`` to every time step: ``(batch, T, ...)`` -> ``(batch, T, ...)``.

    The steps are independent, so time is folded into the batch: the wrapped layer sees one
    input of ``batch * T`` samples, ``(batch * T, ...)``, and its output is unfolded again.
    The backward pass folds dLoss/dy the same way. The weights are the wrapped layer's,
    shared by all steps, so their gradient sums over steps as it sums over the batch. A
    mask ``(batch, T)`` is folded along for the wrapped layer and passed through unchanged.
    """

    min_ndim = 3
    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `TimeDistributed` layer with a layer instance, e.g. "
                f"TimeDistributed(Dense(8)). Received: {layer!r}"
            )
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.layer = layer

    @property
    def weights(self):
        return self.layer.weights

    def _sublayers(self):
        return [self.layer]

    @staticmethod
    def _child_shape(input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])

    def _check_input_shape(self, shape, index=0):
        super()._check_input_shape(shape, index)
        self.layer._check_input_shape(self._child_shape(shape), index)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer._maybe_build(self._child_shape(input_shape))
            for w in self.layer.weights:          # Keras's paths: "td/dense/kernel"
                w.path = f"{self.name}/{w.path}"
        self.built = True

    def compute_output_shape(self, input_shape):
        child = self.layer.compute_output_shape(self._child_shape(input_shape))
        return (input_shape[0], input_shape[1]) + tuple(child[1:])

    def forward(self, x, *, training=False, mask=None):
        b, t = x.shape[:2]
        folded = x.reshape((b * t,) + x.shape[2:])             # every step is one more sample
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim < 2 or mask.shape[:2] != (b, t):
                raise ValueError(
                    f"The mask passed to TimeDistributed layer '{self.name}' must start with "
                    f"(batch, timesteps) = {(b, t)}; received a mask of shape {mask.shape}."
                )
            mask = mask.reshape((b * t,) + mask.shape[2:])
        y, cache = self.layer.forward(folded, training=training, mask=mask)
        return y.reshape((b, t) + y.shape[1:]), (cache, b, t)

    def backward(self, cache, dy):
        inner, b, t = cache
        (dx, *_), dweights = self.layer.backward(inner, dy.reshape((b * t,) + dy.shape[2:]))
        return [None if dx is None else dx.reshape((b, t) + dx.shape[1:])], dweights

    def get_config(self):
        layer = {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}
        return {**super().get_config(), "layer": layer}
