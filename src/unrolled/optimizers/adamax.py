"""Adamax and Nadam, the two Adam variants of Kingma & Ba and of Dozat, as Keras 3 runs them."""
import numpy as np

from unrolled.optimizers.base import Optimizer, via_float32
from unrolled.optimizers.sparse import dense_and_squares
from unrolled.variables import Variable


class _Betas(Optimizer):
    """What Adamax and Nadam share: Keras's arguments and config (beta_1, beta_2, epsilon),
    and sparse Embedding updates (each applies Keras's rule in ``update_step``)."""

    sparse_updates = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None, **kwargs):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Adamax(_Betas):
    """Adam with the infinity norm. With ``t = iterations + 1``, ``m`` and ``u`` at 0::

        m   += (g - m) * (1 - beta_1)
        u    = max(beta_2 * u, |g|)
        var -= lr * m / ((1 - beta_1**t) * (u + epsilon))

    An Embedding's gradient (sparse, as Keras's TensorFlow backend gives it): ``m`` takes
    the row sums and ``|g|`` is taken per looked-up position, then summed by row (0 for
    rows not looked up), as ``ops.abs`` of an ``IndexedSlices`` and its densifying
    ``maximum`` compute it (``sparse.py``)."""


    def slot_groups(self):
        return [[("momentum", 0.0), ("norm", 0.0)]]

    def update_step(self, gradient, variable, learning_rate):
        if hasattr(gradient, "abs_sums"):
            g, g_abs = gradient.dense(), gradient.abs_sums()
        else:
            g, g_abs = gradient, np.abs(gradient)
        var = variable.value
        dt = var.dtype.type
        beta_1_power = via_float32(self.beta_1, dt) ** dt(self.iterations + 1)
        m, u = self.slot(variable, "momentum"), self.slot(variable, "norm")
        m += (g - m) * dt(1 - self.beta_1)
        np.maximum(dt(self.beta_2) * u, g_abs, out=u)
        var -= (learning_rate * m) / ((dt(1) - beta_1_power) * (u + dt(self.epsilon)))


class Nadam(_Betas):
    """Adam with Nesterov momentum (Dozat), with Keras's momentum schedule. With
    ``t = iterations + 1``, ``mu_t = beta_1 * (1 - 0.5 * 0.96**t)`` and ``P`` the running
    product of the ``mu_t`` (one number for the optimizer, updated once per step)::

        P   *= mu_t
        m   += (g - m) * (1 - beta_1)
        v   += (g**2 - v) * (1 - beta_2)
        m_hat = mu_{t+1} * m / (1 - P * mu_{t+1}) + (1 - mu_t) * g / (1 - P)
        var -= lr * m_hat / (sqrt(v / (1 - beta_2**t)) + epsilon)

    An Embedding's gradient: the row sums where ``g`` enters linearly, the per-position
    squares summed by row for ``g**2`` (as Adam, ``sparse.py``)."""

    _u_product = None                              # the product P, made by build as Keras's

    def slot_groups(self):
        return [[("momentum", 0.0), ("velocity", 0.0)]]

    @property
    def variables(self):
        """Keras's order: the slots, then the momentum product (made at the first step)."""
        out = super().variables
        return out + [self._u_product] if self._u_product is not None else out

    def build(self, variables):
        super().build(variables)
        if self._u_product is None and variables:  # in the first variable's dtype, as Keras
            self._u_product = Variable(np.array(1.0, variables[0].value.dtype), "variable",
                                       trainable=False, path=f"{self.name}/variable")

    def _update(self, grads, variables):
        p = self._u_product.value
        dt = p.dtype.type
        p[...] = p * dt(self.beta_1) * (dt(1) - dt(0.5) * dt(0.96) ** dt(self.iterations + 1))
        super()._update(grads, variables)

    def update_step(self, gradient, variable, learning_rate):
        (g, g2), var = dense_and_squares(gradient), variable.value
        dt = var.dtype.type
        beta_1, beta_2, decay = dt(np.float32(self.beta_1)), dt(np.float32(self.beta_2)), dt(0.96)
        t = dt(self.iterations + 1)
        mu_t = beta_1 * (dt(1) - dt(0.5) * decay ** t)
        mu_next = beta_1 * (dt(1) - dt(0.5) * decay ** (t + dt(1)))
        product = dt(self._u_product.value)
        product_next = product * mu_next
        m, v = self.slot(variable, "momentum"), self.slot(variable, "velocity")
        m += (g - m) * (dt(1) - beta_1)
        v += (g2 - v) * (dt(1) - beta_2)
        m_hat = mu_next * m / (dt(1) - product_next) + (dt(1) - mu_t) * g / (dt(1) - product)
        v_hat = v / (dt(1) - beta_2 ** t)
        var -= (m_hat * learning_rate) / (np.sqrt(v_hat) + dt(self.epsilon))
