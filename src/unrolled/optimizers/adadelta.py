"""Adadelta (Zeiler, 2012) and Lion (Chen et al., 2023), as Keras 3 runs them."""
import numpy as np

from unrolled.optimizers.base import Optimizer, via_float32
from unrolled.optimizers.sparse import IndexedSlices


def _scaled_row_sums(gradient, c):
    """``c * g`` summed by row: for an ``IndexedSlices`` each position's row is scaled
    first, then the rows add up (Keras multiplies the slices, then densifies the sum)."""
    if isinstance(gradient, IndexedSlices):
        return gradient.with_values(gradient.values * c).dense()
    return gradient * c


class Adadelta(Optimizer):
    """Steps scaled by the ratio of two running RMS's, of the steps and of the gradients.
    With ``E[g2]`` and ``E[dx2]`` at 0 and ``rms(a) = sqrt(a + epsilon)``::

        E[g2]  = rho * E[g2] + (1 - rho) * g**2
        dx     = -rms(E[dx2]) * g / rms(E[g2])
        E[dx2] = rho * E[dx2] + (1 - rho) * dx**2
        var   += lr * dx

    An Embedding's gradient (sparse, as Keras's TensorFlow backend gives it): ``dx`` is
    computed per looked-up position (``rms`` gathered at its row), so both ``g**2`` and
    ``dx**2`` are squared per position, then summed by row; the weights get the row sums
    of ``lr * dx``. Rows not looked up keep their weights and their running means decay.
    """

    sparse_updates = True

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def slot_groups(self):
        return [[("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0)]]

    def update_step(self, gradient, variable, learning_rate):
        var = variable.value
        dt = var.dtype.type
        rho, one_minus_rho, eps = dt(self.rho), dt(1 - self.rho), dt(self.epsilon)
        acc_g = self.slot(variable, "accumulated_grad")
        acc_dx = self.slot(variable, "accumulated_delta_var")
        sparse = isinstance(gradient, IndexedSlices)
        g = gradient.values if sparse else gradient
        rows = gradient.indices if sparse else slice(None)

        def row_sums(per_position):             # per-position rows -> a dense array
            if not sparse:
                return per_position
            return gradient.with_values(per_position).dense()

        # E[g2] = rho E[g2] + (1 - rho) g^2   (squares per position, then summed)
        acc_g[...] = rho * acc_g + row_sums(one_minus_rho * np.square(g))
        # dx = -rms(E[dx2]) g / rms(E[g2])     (the RMS's gathered at each position's row)
        dx = -((np.sqrt(acc_dx + eps)[rows] * g) / np.sqrt(acc_g + eps)[rows])
        acc_dx[...] = rho * acc_dx + row_sums(one_minus_rho * np.square(dx))
        var += row_sums(learning_rate * dx)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Lion(Optimizer):
    """The sign of an interpolated momentum, then the momentum's own update (``m`` at 0)::

        var -= lr * sign(beta_1 * m + (1 - beta_1) * g)
        m    = beta_2 * m + (1 - beta_2) * g

    An Embedding's gradient: only linear in ``g``, so the row sums (each position's row
    scaled before the sum, as Keras); rows not looked up still move by
    ``lr * sign(beta_1 * m)`` where their momentum is non-zero, and their momentum decays.
    """

    sparse_updates = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
                f"degenerates to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1, self.beta_2 = beta_1, beta_2

    def slot_groups(self):
        return [[("momentum", 0.0)]]

    def update_step(self, gradient, variable, learning_rate):
        var = variable.value
        dt = var.dtype.type
        beta_1, beta_2 = via_float32(self.beta_1, dt), via_float32(self.beta_2, dt)
        m = self.slot(variable, "momentum")
        var -= learning_rate * np.sign(m * beta_1 + _scaled_row_sums(gradient, dt(1) - beta_1))
        m[...] = m * beta_2 + _scaled_row_sums(gradient, dt(1) - beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
