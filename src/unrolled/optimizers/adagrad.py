"""Adagrad (Duchi et al.): per-coordinate steps shrinking with the gradients' history."""
import numpy as np

from unrolled.optimizers.base import Optimizer
from unrolled.optimizers.sparse import dense_and_squares


class Adagrad(Optimizer):
    """Accumulate squared gradients (from ``initial_accumulator_value``, 0.1)::

        accumulator += g**2
        var -= (lr * g) / sqrt(accumulator + epsilon)

    An Embedding's gradient (sparse, as in Keras's TensorFlow backend): the accumulator
    adds the per-position squares summed by row, not the square of the row sum; the step
    uses the row sums (see ``sparse.py``).
    """

    sparse_updates = True

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def slot_groups(self):
        return [[("accumulator", self.initial_accumulator_value)]]

    def update_step(self, gradient, variable, learning_rate):
        (g, g2), lr, var = dense_and_squares(gradient), learning_rate, variable.value
        accumulator = self.slot(variable, "accumulator")
        accumulator += g2
        var -= (lr * g) / np.sqrt(accumulator + var.dtype.type(self.epsilon))

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
