"""RMSprop (Hinton), optionally centered and with momentum."""
import numpy as np

from unrolled.optimizers.base import Optimizer
from unrolled.optimizers.sparse import dense_and_squares


class RMSprop(Optimizer):
    """Divide the step by a running root mean square of the gradients::

        velocity = rho * velocity + (1 - rho) * g**2
        centered:  avg_g = rho * avg_g + (1 - rho) * g
                   denominator = velocity - avg_g**2 + epsilon
        else:      denominator = velocity + epsilon
        increment = (lr * g) / sqrt(denominator)
        momentum > 0:  m = momentum * m + increment;  var -= m
        else:          var -= increment

    ``epsilon`` (1e-7) goes *inside* the square root, unlike PyTorch's RMSprop.

    An Embedding's gradient (sparse, as in Keras's TensorFlow backend): ``velocity`` adds
    the per-position squares summed by row; ``avg_g`` and the step use the row sums; all
    rows' state decays (see ``sparse.py``). Centered, ``velocity - avg_g**2`` can then go
    negative for a token repeated more than ``1 / (1 - rho)`` times: NaN here, and Keras
    fails with an InvalidArgumentError there.
    """

    sparse_updates = True

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        self.rho, self.momentum = rho, momentum
        self.epsilon, self.centered = epsilon, centered

    def slot_groups(self):
        groups = [[("velocity", 0.0)]]
        if self.momentum > 0:
            groups.append([("momentum", 0.0)])
        if self.centered:
            groups.append([("average_gradient", 0.0)])
        return groups

    def update_step(self, gradient, variable, learning_rate):
        (g, g2), lr, var = dense_and_squares(gradient), learning_rate, variable.value
        dt = var.dtype.type
        rho, one_minus_rho, eps = dt(self.rho), dt(1 - self.rho), dt(self.epsilon)
        velocity = self.slot(variable, "velocity")
        velocity[...] = rho * velocity + one_minus_rho * g2
        if self.centered:
            avg_g = self.slot(variable, "average_gradient")
            avg_g[...] = rho * avg_g + one_minus_rho * g
            denominator = velocity - np.square(avg_g) + eps
        else:
            denominator = velocity + eps
        increment = (lr * g) / np.sqrt(denominator)
        if self.momentum > 0:
            m = self.slot(variable, "momentum")
            m[...] = dt(self.momentum) * m + increment
            var -= m
        else:
            var -= increment

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
