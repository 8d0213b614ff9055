"""A recurrent layer's states: the zeros a sequence starts from, ``initial_state``, and
``stateful`` layers' states kept between calls (``reset_state``).

``RNN`` takes these methods from ``LoopStates`` (a mixin); they read ``self.cell``
(its ``state_size``, or a Keras cell's ``initial_states``), ``self.dtype`` and
``self.stateful``.
"""
import numpy as np

from ...utils import to_list
from ..base import check_array


class LoopStates:
    """The states half of ``RNN`` (a mixin: ``RNN`` is the only class that uses it)."""

    def _create_states(self, batch_size):
        self.states = self._zero_states(batch_size)

    def _zero_states(self, batch):
        """The states a sequence starts from: zeros, or a Keras cell's get_initial_state."""
        own = getattr(self.cell, "initial_states", None)
        if own is not None:
            return own(batch, self.dtype)
        return [np.zeros((batch, s), self.dtype) for s in self.cell.state_size]

    def reset_state(self):
        """Zero the states of a stateful layer (Keras's ``reset_state``)."""
        if self.states is not None:
            for s in self.states:
                s[...] = 0

    reset_states = reset_state

    def _check_initial_state_shapes(self, state_shapes, input_shape):
        sizes = self.cell.state_size
        if len(state_shapes) != len(sizes):
            raise ValueError(
                f"Layer '{self.name}' expects {len(sizes)} initial state(s) of shapes "
                f"{[(input_shape[0], s) for s in sizes]}, but received {len(state_shapes)}: "
                f"{[tuple(s) for s in state_shapes]}."
            )
        for i, (shape, size) in enumerate(zip(state_shapes, sizes)):
            shape = tuple(shape)
            if len(shape) != 2 or shape[1] != size or (
                    shape[0] is not None and input_shape[0] is not None and shape[0] != input_shape[0]):
                raise ValueError(
                    f"Initial state {i} of layer '{self.name}' must have shape "
                    f"(batch_size, {size}) = {(input_shape[0], size)}; received {shape}."
                )

    def _initial_states(self, x, initial_state):
        batch = x.shape[0]
        if initial_state is not None:
            states = [check_array(s, f"initial_state of layer '{self.name}'", self.dtype)
                      for s in to_list(initial_state)]
            self._check_initial_state_shapes([s.shape for s in states], x.shape)
            return states
        if self.stateful and batch == 0:
            # An empty batch (an empty partition in batch scoring) has no sequences to carry
            # on: its outputs are empty and the kept states are neither checked nor changed.
            return self._zero_states(0)
        if self.stateful:
            if self.states is None:
                self._create_states(batch)
            if self.states[0].shape[0] != batch:
                raise ValueError(
                    f"If an RNN is stateful, the batch size of the input sequences must be the "
                    f"same as the batch size of the initial state.\n- Expected batch size: "
                    f"{self.states[0].shape[0]}\n- Received batch size: {batch}"
                )
            return [s.copy() for s in self.states]
        return self._zero_states(batch)
