"""BatchNormalization: batch statistics in training (updating moving averages), moving
statistics at inference; the shared math is in ``normalization.py``."""
import numpy as np

from .. import initializers
from ..config import epsilon
from .normalization import (_Affine, affine_backward, affine_forward, moments,
                            moments_backward)


class BatchNormalization(_Affine):
    """Normalizes each feature of ``axis`` over the batch (and every other axis).

    ``training=True`` (in ``fit``), on a trainable layer: the batch's mean and biased
    variance over all axes but ``axis`` normalize the input, and the moving statistics
    become ``moving = moving * momentum + batch * (1 - momentum)``. Otherwise (inference,
    or a layer with ``trainable=False``, as in Keras 3) the moving statistics are used:
    ``y = (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta``.

    With a mask (``(batch, ...)``, one dimension less than the input), the batch moments
    count the unmasked entries only: ``mean = sum(m x) / (sum m + 1e-7)``, and the same for
    the variance, as Keras does; every entry is still normalized.

    Weights: ``gamma``, ``beta`` (trainable, when ``scale``/``center``), ``moving_mean``,
    ``moving_variance`` (non-trainable), in Keras's order.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kwargs):
        # Keras 2's options: accepted at the values that change nothing, else refused.
        for key, neutral in (("fused", (None, True, False)), ("virtual_batch_size", (None,)),
                             ("adjustment", (None,))):
            value = kwargs.pop(key, None)
            if not any(value is v for v in neutral):
                raise NotImplementedError(
                    f"BatchNormalization({key}={value!r}) is not implemented in unrolled "
                    f"(Keras 2's option; only {' or '.join(map(repr, neutral))}).")
        if renorm:
            raise NotImplementedError(
                "BatchNormalization(renorm=True) (batch renormalization) is not implemented "
                "in unrolled; it would be ignored. Use renorm=False.")
        if isinstance(axis, (list, tuple)):          # Keras 2 files write [axis]
            if len(axis) != 1:
                raise NotImplementedError(f"BatchNormalization over several axes ({axis}) is "
                                          "not implemented; Keras 3 takes one int axis.")
            axis = axis[0]
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         {"beta_regularizer": beta_regularizer,
                          "gamma_regularizer": gamma_regularizer,
                          "beta_constraint": beta_constraint,
                          "gamma_constraint": gamma_constraint}, kwargs)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        # One process is one replica: synchronized moments equal the local ones (Keras
        # falls back to them without a replica context), so both values compute the same.
        self.synchronized = bool(synchronized)
        self.renorm = False
        self.renorm_clipping = renorm_clipping       # without effect when renorm is False,
        self.renorm_momentum = renorm_momentum       # in Keras too; kept for the config
        self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        self._check_rank(input_shape)
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(f"Layer '{self.name}': axis {self.axis} of the input shape "
                             f"{tuple(input_shape)} must have a defined size.")
        self._spec = (len(input_shape), {self.axis % len(input_shape): dim})
        self._affine_weights((dim,), gamma=self.scale, beta=self.center)
        self.moving_mean = self.add_weight("moving_mean", (dim,), self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (dim,),
                                               self.moving_variance_initializer,
                                               trainable=False)
        self.built = True

    def forward(self, x, *, training=False, mask=None):
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim != x.ndim - 1:
                raise ValueError("The mask provided should be one dimension less than the "
                                 f"inputs. Received: mask.shape={mask.shape}, "
                                 f"inputs.shape={x.shape}")
        b_shape = [1] * x.ndim
        b_shape[self.axis] = x.shape[self.axis]
        gamma = None if self.gamma is None else self.gamma.value.reshape(b_shape)
        beta = None if self.beta is None else self.beta.value.reshape(b_shape)
        batch_stats = bool(training) and self.trainable
        weights = None
        axes = tuple(i for i in range(x.ndim) if i != self.axis % x.ndim)
        if batch_stats:
            if mask is not None:
                weights = np.broadcast_to(mask[..., None], x.shape).astype(x.dtype)
            mean, var = moments(x, axes, weights, np.asarray(epsilon(), x.dtype))
            m = self.momentum                         # moving = moving m + batch (1 - m)
            self.moving_mean.assign(self.moving_mean.value * m + mean.reshape(-1) * (1.0 - m))
            self.moving_variance.assign(self.moving_variance.value * m
                                        + var.reshape(-1) * (1.0 - m))
        else:
            # copies: a later training call of a shared layer updates the weights in place
            mean = self.moving_mean.value.reshape(b_shape).copy()
            var = self.moving_variance.value.reshape(b_shape).copy()
        y, r, inv = affine_forward(x, mean, var, self.epsilon, gamma, beta)
        return y, (x, mean, r, inv, gamma, None if beta is None else tuple(b_shape),
                   batch_stats, weights, axes)

    def backward(self, cache, dy):
        x, mean, r, inv, gamma, beta_shape, batch_stats, weights, axes = cache
        xc = x - mean
        dx, dgamma, dbeta, dmean, dvar = affine_backward(dy, xc, r, inv, gamma, beta_shape)
        grads = self._weight_grads(dgamma, dbeta)
        if batch_stats:                  # the moments come from x; the moving ones are unused
            count = (x.size // mean.size if weights is None else
                     weights.sum(axis=axes, keepdims=True) + np.asarray(epsilon(), x.dtype))
            dx = moments_backward(dx, xc, dmean, dvar, count, weights, axes)
            grads += [np.zeros_like(self.moving_mean.value),
                      np.zeros_like(self.moving_variance.value)]
        else:                            # the moving statistics are the layer's weights
            grads += [dmean.reshape(-1), dvar.reshape(-1)]
        return [dx], grads

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "synchronized": self.synchronized, "renorm": False,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}
