"""Stochastic gradient descent, with optional (Nesterov) momentum."""
from unrolled.optimizers.base import Optimizer, via_float32


class SGD(Optimizer):
    """Gradient descent; with ``momentum`` a velocity ``m`` (starting at 0) is kept::

        momentum == 0:  var -= g * lr                      (no slot is created)
        otherwise:      m    = m * momentum - g * lr
                        var += m                           (classical)
                        var += m * momentum - g * lr       (nesterov, with the new m)

    ``momentum`` must be a Python float in [0, 1] (``momentum=0`` as an int is refused,
    as Keras refuses it).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        if not isinstance(momentum, float) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = nesterov

    def slot_groups(self):
        return [[("momentum", 0.0)]] if self.momentum != 0 else []

    def update_step(self, gradient, variable, learning_rate):
        g, lr, var = gradient, learning_rate, variable.value
        if self.momentum == 0:
            var -= g * lr
            return
        momentum = via_float32(self.momentum, var.dtype.type)
        m = self.slot(variable, "momentum")
        m[...] = m * momentum - g * lr
        if self.nesterov:
            var += m * momentum - g * lr
        else:
            var += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
