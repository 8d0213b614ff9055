"""FTRL-Proximal (McMahan et al., 2013), "Follow The Regularized Leader", as Keras 3 runs it."""
import numpy as np

from unrolled.optimizers.base import Optimizer
from unrolled.optimizers.sparse import dense_and_squares


class Ftrl(Optimizer):
    """With ``n`` (the accumulator, from ``initial_accumulator_value``), ``z`` (the
    "linear" slot, from 0), ``p = -learning_rate_power`` and
    ``l2 = l2_regularization_strength + beta / (2 lr)``::

        g_s  = g + 2 * l2_shrinkage_regularization_strength * var
        n'   = n + g**2
        z   += g_s - (n'**p - n**p) / lr * var
        var  = (clip(z, -l1, l1) - z) / (n'**p / lr + 2 * l2)
        n    = n'

    (``var`` is 0 where ``|z| <= l1``, and is recomputed for every entry at every step.)

    An Embedding's gradient (sparse, as Keras's TensorFlow backend gives it): ``n`` adds the
    per-position squares summed by row; ``z`` takes the row sums; everything else is dense,
    so the shrinkage term reaches every row, as in Keras 3.
    """

    sparse_updates = True

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        checks = [
            ("initial_accumulator_value", initial_accumulator_value < 0.0, "positive or zero"),
            ("learning_rate_power", learning_rate_power > 0.0, "negative or zero"),
            ("l1_regularization_strength", l1_regularization_strength < 0.0,
             "positive or zero"),
            ("l2_regularization_strength", l2_regularization_strength < 0.0,
             "positive or zero"),
            ("l2_shrinkage_regularization_strength",
             l2_shrinkage_regularization_strength < 0.0, "positive or zero"),
        ]
        values = locals()
        for key, bad, rule in checks:
            if bad:
                raise ValueError(f"`{key}` needs to be {rule}. Received: {key}={values[key]}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def slot_groups(self):
        return [[("accumulator", self.initial_accumulator_value), ("linear", 0.0)]]

    def update_step(self, gradient, variable, learning_rate):
        (g, g2), lr, var = dense_and_squares(gradient), learning_rate, variable.value
        dt = var.dtype.type
        n, z = self.slot(variable, "accumulator"), self.slot(variable, "linear")
        p = dt(-self.learning_rate_power)
        l1 = dt(self.l1_regularization_strength)
        l2 = dt(self.l2_regularization_strength) + dt(self.beta) / (dt(2.0) * lr)
        g_s = g + dt(2 * self.l2_shrinkage_regularization_strength) * var
        n_new = n + g2
        # z += g_s - sigma var,  sigma = (n'^p - n^p) / lr
        z += g_s - ((np.power(n_new, p) - np.power(n, p)) / lr) * var
        quadratic = np.power(n_new, p) / lr + dt(2) * l2
        var[...] = (np.clip(z, -l1, l1) - z) / quadratic
        n[...] = n_new

    def get_config(self):
        return {**super().get_config(),
                "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
