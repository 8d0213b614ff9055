"""Adam (Kingma & Ba, with the "epsilon hat" placement) and AdamW."""
import numpy as np

from unrolled.optimizers.base import Optimizer, via_float32
from unrolled.optimizers.sparse import dense_and_squares


class Adam(Optimizer):
    """Adam. With ``t = iterations + 1`` and first/second moments ``m``, ``v`` (start at 0)::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m    += (g - m) * (1 - beta_1)            # m = beta_1 m + (1 - beta_1) g
        v    += (g**2 - v) * (1 - beta_2)         # v = beta_2 v + (1 - beta_2) g**2
        amsgrad: v_hat = max(v_hat, v), and v_hat replaces v below
        var  -= (m * alpha) / (sqrt(v) + epsilon)

    The bias corrections sit in ``alpha`` and ``epsilon`` is added to the square root of
    the *uncorrected* ``v``: the paper's "epsilon hat", equal to PyTorch's Adam with
    ``eps = epsilon * sqrt(1 - beta_2**t)``. The default epsilon is 1e-7.

    An Embedding's gradient (sparse, as in Keras's TensorFlow backend): ``m`` takes the
    row sums, ``v`` the per-position squares summed by row (not the square of the sum);
    every row's ``m``, ``v`` and weights still update densely (see ``sparse.py``).
    """

    sparse_updates = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        self.beta_1, self.beta_2 = beta_1, beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def slot_groups(self):
        groups = [[("momentum", 0.0), ("velocity", 0.0)]]
        return groups + [[("velocity_hat", 0.0)]] if self.amsgrad else groups

    def update_step(self, gradient, variable, learning_rate):
        (g, g2), lr, var = dense_and_squares(gradient), learning_rate, variable.value
        dt = var.dtype.type
        t = dt(self.iterations + 1)
        beta_1_power = via_float32(self.beta_1, dt) ** t
        beta_2_power = via_float32(self.beta_2, dt) ** t
        alpha = lr * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = self.slot(variable, "momentum")
        v = self.slot(variable, "velocity")
        m += (g - m) * dt(1 - self.beta_1)
        v += (g2 - v) * dt(1 - self.beta_2)
        if self.amsgrad:
            v_hat = self.slot(variable, "velocity_hat")
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        var -= (m * alpha) / (np.sqrt(v) + dt(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay, ``weight_decay=0.004`` by default: before each
    Adam step, ``var -= var * weight_decay * lr`` (Loshchilov & Hutter)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        if self.weight_decay is None:
            raise ValueError(
                "Argument `weight_decay` must be a float. Received: weight_decay=None"
            )
