"""The one time loop that every recurrent layer shares, forward and backward.

``RNN(cell)`` turns a cell's step math into a layer over sequences. It owns everything
that is about time rather than about the cell:

* batch-major ``(B, T, F)`` in and out, time-major ``(T, B, F)`` inside the loop;
* the input projection of all steps as one product (``cell.project_inputs``);
* ``go_backwards`` (process ``t = T-1 ... 0``; a returned sequence stays in processing
  order, as Keras returns it), ``return_sequences``, ``return_state``;
* ``initial_state``, ``stateful`` with ``reset_state()``;
* masks: at a masked step the states are carried over unchanged and the output is the
  previous output (zeros before the first step), or zeros with ``zero_output_for_mask``;
* dropout masks drawn once per call and kept for every step, as Keras does;
* backpropagation through time, the same loop run in reverse.

This module holds the forward loop; ``bptt.py`` the backward one, ``states.py`` the
states, ``dropout.py`` the dropout masks and ``inputs.py`` the time-major inputs and their
projection. The cells (``cells.py``, ``lstm.py``, ``gru.py``, ``stacked.py``,
``custom_cells.py``) hold the step math.

The loop is the notebook's loop::

    for t in range(T):
        h = tanh(x[t] @ Wx + h @ Wh + b)
"""
import inspect

import numpy as np

from ...utils import to_list
from . import custom_cells
from ..base import Layer, _snake_case
from .bptt import BackpropThroughTime
from .dropout import draw_dropout_masks
from .inputs import TimeMajorInputs, project_in_chunks, projection_chunk
from .stacked import StackedRNNCells
from .states import LoopStates


# A recurrent layer's options that belong to its cell's weights (``Layer.weight_rules``).
CELL_RULES = tuple(f"{p}_{k}" for p in ("kernel", "recurrent", "bias")
                   for k in ("regularizer", "constraint"))


class _Cache(tuple):
    """What ``RNN.forward`` keeps for ``backward``: (xs, mask, dropout mask, step caches,
    number of initial states, input shape), plus the projected inputs ``xp``. ``consumed``
    turns True at its backward pass. ``sequence`` holds a compiled training forward
    (``fast.planning.Trained``), else None."""

    def __new__(cls, xs, mask, dp_mask, caches, n_states, x_shape, xp):
        self = super().__new__(cls, (xs, mask, dp_mask, caches, n_states, x_shape))
        self.xp, self.consumed, self.sequence = xp, False, None
        return self


# RNN's own arguments after the cell, in Keras's positional order.
_LOOP_ARGUMENTS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                   "zero_output_for_mask")


def _positional(name, names, args, kwargs):
    """Put positional ``args`` into ``kwargs`` under ``names``, as Python would."""
    if len(args) > len(names):
        raise TypeError(f"{name}() takes at most {len(names)} positional arguments "
                        f"({len(args)} given).")
    for key, value in zip(names, args):
        if key in kwargs:
            raise TypeError(f"{name}() got multiple values for argument '{key}'.")
        kwargs[key] = value


def _name_cell_weights(prefix, cell):
    """Keras's weight paths under a recurrent layer: ``lstm/lstm_cell/kernel``, and for
    stacked cells one level per cell (``rnn/stacked_rnn_cells/gru_cell/bias``)."""
    for sub in getattr(cell, "cells", None) or ():
        _name_cell_weights(f"{prefix}/{cell.name}", sub)
    if not getattr(cell, "cells", None):
        for w in cell.weights:
            w.path = f"{prefix}/{cell.name}/{w.name}"


class RNN(LoopStates, BackpropThroughTime, Layer):
    """A recurrent layer from a cell: ``RNN(SimpleRNNCell(4))`` is ``SimpleRNN(4)``.

    Input ``(batch, timesteps, features)``. Output ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences``; with ``return_state`` the
    final states follow the output in a list.
    """

    input_ndim = 3
    supports_masking = True
    # A layer of one cell type (SimpleRNN, LSTM, GRU) declares it: ``LSTM(units, ...)`` is
    # ``RNN(LSTMCell(units, ...), ...)``, its arguments in Keras's positional order; the
    # cell's go to the cell, the rest to the loop.
    cell_class = None
    arguments = ()

    def __init__(self, *args, **kwargs):
        if self.cell_class is not None:
            cell = self._make_cell(args, kwargs)
        else:
            _positional(type(self).__name__, ("cell",) + _LOOP_ARGUMENTS, args, kwargs)
            if "cell" not in kwargs:
                raise TypeError("RNN() missing 1 required argument: 'cell'.")
            cell = kwargs.pop("cell")
        self._init_loop(cell, **kwargs)

    def _make_cell(self, args, kwargs):
        """The cell of ``cell_class`` from a layer's arguments (taken out of ``kwargs``)."""
        name = type(self).__name__
        _positional(name, self.arguments, args, kwargs)
        if "units" not in kwargs:
            raise TypeError(f"{name}() missing 1 required argument: 'units'.")
        units = kwargs.pop("units")
        if "use_cudnn" in self.arguments:
            self.use_cudnn = kwargs.pop("use_cudnn", "auto")
            if self.use_cudnn not in ("auto", True, False):
                raise ValueError(f"Invalid value for argument `use_cudnn`: expected one of "
                                 f"'auto', True, False; received {self.use_cudnn!r}.")
        takes = set(inspect.signature(self.cell_class.__init__).parameters) | set(CELL_RULES)
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in takes - {"self", "kwargs"}}
        return self.cell_class(units, dtype=kwargs.get("dtype"),
                               name=_snake_case(self.cell_class.__name__), **own)

    def _init_loop(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                   stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        kwargs.pop("implementation", None)  # accepted for compatibility; one code path here
        super().__init__(**kwargs)
        cell = custom_cells.wrap(cell)            # cells written the Keras way (`call`)
        if isinstance(cell, (list, tuple)):       # Keras: RNN([cell, cell]) stacks them
            cell = StackedRNNCells(list(cell))
        for attr in ("step", "step_backward", "project_inputs", "state_size"):
            if not hasattr(cell, attr):
                raise TypeError(
                    f"RNN cell {cell!r} has no `{attr}`: a cell must provide project_inputs, "
                    "step, step_backward, weight_gradients and state_size (see "
                    "unrolled.layers.recurrent.cells)."
                )
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.states = None

    # --- weights live in the cell ----------------------------------------------------------
    @property
    def weights(self):
        return self.cell.weights

    def _sublayers(self):
        return [self.cell]

    def build(self, input_shape):
        self._feature_size = input_shape[-1]
        if not self.cell.built:
            self.cell.dtype = self.dtype
            self.cell.build(tuple(input_shape[:1]) + tuple(input_shape[2:]))
            self.cell.built = True
            _name_cell_weights(self.name, self.cell)
        if self.stateful and input_shape[0] is not None and self.states is None:
            self._create_states(input_shape[0])
        self.built = True

    def compute_output_shape(self, input_shape):
        b, t = input_shape[0], input_shape[1]
        m = self.cell.output_size
        out = (b, t, m) if self.return_sequences else (b, m)
        if self.return_state:
            return [out] + [(b, s) for s in self.cell.state_size]
        return out

    def compute_mask(self, inputs, mask=None):
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask] + [None] * len(self.cell.state_size)
        return out_mask

    def _check_mask(self, mask, x):
        mask = np.asarray(mask)
        if mask.shape != x.shape[:2]:
            raise ValueError(
                f"The mask of layer '{self.name}' must have shape (batch, timesteps) = "
                f"{x.shape[:2]}; received {mask.shape}."
            )
        return mask.astype(bool, copy=False)

    # --- the loop ----------------------------------------------------------------------------
    def forward(self, x, *, training=False, mask=None, initial_state=None):
        return self._run(x, training, mask, initial_state, keep_cache=True)

    def call(self, x, training=False, mask=None, initial_state=None):
        """The outputs alone. No step caches are kept, so inference holds one step in memory."""
        return self._run(x, training, mask, initial_state, keep_cache=False)[0]

    def _run(self, x, training, mask, initial_state, keep_cache):
        if not self.built:                 # forward/call used directly: build from x, as layer(x)
            x = self._prepare_eager(x)
        if x.shape[1] == 0:
            raise ValueError(f"Input 0 of layer '{self.name}' has 0 timesteps (shape "
                             f"{x.shape}); a recurrent layer needs at least one step.")
        cell = self.cell
        if hasattr(cell, "begin_call"):                      # a Keras cell's `training`
            cell.begin_call(training)
        states = self._initial_states(x, initial_state)
        B, T = x.shape[:2]
        m = None
        if mask is not None:
            m = self._check_mask(mask, x).T                  # (T, B)
            if self.go_backwards:
                m = m[::-1]
        dp_mask, rec_mask = draw_dropout_masks(cell, B, x.shape[2], self.dtype, training)
        xs = TimeMajorInputs(x, self.go_backwards, dp_mask)  # xs[t0:t1]: (t1-t0, B, F)
        ys = np.empty((B, T, cell.output_size), self.dtype) if self.return_sequences else None
        caches, xp, trained = [], None, None
        # The one place the loop knows a fast path exists: a compiled implementation of the
        # whole sequence, when one covers this cell, dtype and call (``unrolled.fast``,
        # optional: imported at the first call, never by the layers' modules).
        from ... import fast
        fast_plan = fast.plan(cell, xs.dtype, B, training=keep_cache, rec_mask=rec_mask,
                              dp_mask=dp_mask)
        if fast_plan is not None and keep_cache:
            out, states, trained = fast_plan.train(xs, states, ys, m, rec_mask,
                                                   self.zero_output_for_mask)
            caches = trained.caches
        elif fast_plan is not None:
            out, states = fast_plan.infer(x, xs, states, ys, m, self.go_backwards,
                                          self.zero_output_for_mask)
        else:
            out, states, caches, xp = self._run_steps(xs, states, ys, m, rec_mask, keep_cache)
        if self.stateful and B > 0:                          # (0 samples: states kept)
            self.states = [s.copy() for s in states]
        y = ys if self.return_sequences else out
        result = [y] + list(states) if self.return_state else y
        n_states = len(to_list(initial_state))
        cache = _Cache(xs, m, dp_mask, caches, n_states, x.shape, xp)
        cache.sequence = trained
        return result, cache

    def _run_steps(self, xs, states, ys, m, rec_mask, keep_cache):
        """The reference loop: the cell's ``step`` for t = 0, 1, ..., T-1. The input
        projection is made a chunk of steps (about 4 MB of output) per product: inference
        needs no (T, B, G*M) buffer, which can reach gigabytes, and reads each chunk while
        it is still in cache. Training keeps every step's projection and cache. Returns
        (output, states, caches, projected inputs or None)."""
        cell = self.cell
        chunk = projection_chunk(cell, xs)
        xp = project_in_chunks(cell.project_inputs, xs, chunk) if keep_cache else None
        caches, prev_out, out = [], None, None
        src, base = xp, 0                                    # src[t - base] is step t's input
        for t in range(len(xs)):
            if not keep_cache and t % chunk == 0:            # (a new buffer: states may view it)
                src, base = cell.project_inputs(xs[t:t + chunk]), t
            out, new_states, cache = cell.step(src[t - base], states, rec_mask)
            if m is not None:                                # carry states over masked steps
                keep = m[t][:, None]
                if prev_out is None:
                    prev_out = np.zeros_like(out)
                out = np.where(keep, out, 0 if self.zero_output_for_mask else prev_out)
                new_states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
            if ys is not None:
                ys[:, t] = out                               # processing order, batch-major
            if keep_cache:
                caches.append(cache)
            states = new_states
            prev_out = out
        return out, states, caches, xp

    def get_config(self):
        config = {**super().get_config(), "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards,
                  "stateful": self.stateful, "unroll": self.unroll,
                  "zero_output_for_mask": self.zero_output_for_mask}
        if self.cell_class is not None:                      # LSTM(...): the cell's options
            config.update(self.cell.cell_config())
        return config
