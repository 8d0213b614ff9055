"""``keras.random`` with Keras 3's signatures, drawn by NumPy generators.

Every function takes ``seed``, as Keras's do:

- an int: the same numbers on every call with that seed (a fresh generator each time);
- a ``SeedGenerator``: a new draw on every call (its state ``[seed, n]`` advances by one);
- None: a draw from the package generator that ``unrolled.utils.set_random_seed`` seeds.

A generator for the state ``[s, n]`` is ``np.random.default_rng([s, n])``: the
construction Keras's NumPy backend uses. The numbers are not those of Keras's TensorFlow
(or JAX, PyTorch) backend, whose generators differ; shapes, dtypes, the distributions and
what repeats (an int seed) or advances (a ``SeedGenerator``) are Keras's.

(Inside the package, this module is ``unrolled.random``; the standard library's ``random``
stays ``random`` for absolute imports.)
"""
import math

import numpy as np

from unrolled import config, utils

_RANDOM_NAMES = ("SeedGenerator, normal, uniform, randint, truncated_normal, dropout, "
                 "shuffle, categorical, gamma, binomial, beta")


class SeedGenerator:
    """A seed that advances: ``state`` is ``[seed, n]``, ``next()`` returns it and adds one
    to ``n``. ``seed=None`` draws the seed from the package generator. Named as Keras
    names it (``seed_generator``, ``seed_generator_1``, ...)."""

    def __init__(self, seed=None, name=None, **kwargs):
        from unrolled.metrics.base import auto_name
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        self.name = name or auto_name(type(self).__name__)
        self._initial_seed = seed
        if seed is None:
            seed = int(utils.rng().integers(1, int(1e9)))
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed}")
        self.state = np.array([int(seed) & 0xFFFFFFFF, 0], dtype=np.uint32)

    def next(self, ordered=True):
        """The current state, then advance it: ``n + 1`` (``ordered``) or Keras's
        ``(state + 1) * 5387 % 933199``."""
        current = self.state.copy()
        if ordered:
            self.state = self.state + np.array([0, 1], dtype=np.uint32)
        else:
            self.state = ((self.state.astype(np.int64) + 1) * 5387 % 933199).astype(np.uint32)
        return current

    def get_config(self):
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _generator(seed):
    if isinstance(seed, SeedGenerator):
        return np.random.default_rng(seed.next())
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(np.array([int(seed) & 0xFFFFFFFF, 0], dtype=np.uint32))
    if seed is None:
        return utils.rng()
    raise ValueError("Argument `seed` must be either an integer or an instance of "
                     f"`SeedGenerator`. Received: seed={seed} (of type {type(seed)})")


def _shape(shape):
    return tuple(int(d) for d in shape) if np.ndim(shape) else (int(shape),)


def _float_dtype(dtype, fn):
    dt = np.dtype(dtype or config.floatx())
    if dt.kind != "f":
        raise ValueError(f"`keras.random.{fn}` requires a floating point `dtype`. "
                         f"Received: dtype={dtype} ")
    return dt


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of ``N(mean, stddev**2)``."""
    dt = _float_dtype(dtype, "normal")
    return _generator(seed).normal(loc=mean, scale=stddev, size=_shape(shape)).astype(dt)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of the uniform distribution on ``[minval, maxval)``."""
    dt = _float_dtype(dtype, "uniform")
    return _generator(seed).uniform(low=minval, high=maxval, size=_shape(shape)).astype(dt)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers in ``[minval, maxval)``, uniformly."""
    dt = np.dtype(dtype or "int32")
    if dt.kind not in "iu":
        raise ValueError("`keras.random.randint` requires an integer `dtype`. "
                         f"Received: dtype={dtype} ")
    return _generator(seed).integers(minval, maxval, size=_shape(shape), dtype=dt)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of ``N(mean, stddev**2)`` kept within two standard deviations of the mean
    (the others are drawn again)."""
    dt = _float_dtype(dtype, "truncated_normal")
    shape = _shape(shape)
    size, rng, kept = math.prod(shape), _generator(seed), np.empty(0)
    while kept.size < size:
        batch = rng.normal(loc=mean, scale=stddev, size=size)
        kept = np.concatenate([kept, batch[np.abs(batch - mean) <= 2 * stddev]])
    return kept[:size].reshape(shape).astype(dt)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """``inputs / (1 - rate)`` where kept, 0 where dropped (each entry, or each entry of
    ``noise_shape`` broadcast to the inputs, kept with probability ``1 - rate``)."""
    x = np.asarray(inputs)
    if not 0 <= rate <= 1:
        raise ValueError(f"Invalid value received for argument `rate`. Expected a float value "
                         f"between 0 and 1. Received: rate={rate}")
    if rate == 1.0:
        return np.zeros_like(x)
    if rate == 0.0:
        return x
    shape = x.shape if noise_shape is None else tuple(
        x.shape[i] if n is None else int(n) for i, n in enumerate(noise_shape))
    keep = 1.0 - rate
    kept = np.broadcast_to(_generator(seed).uniform(size=shape) < keep, x.shape)
    return np.where(kept, (x / x.dtype.type(keep)).astype(x.dtype), np.zeros_like(x))


def shuffle(x, axis=0, seed=None):
    """``x`` with its slices along ``axis`` in a random order (whole slices move, as
    Keras's TensorFlow backend shuffles them)."""
    x = np.asarray(x)
    order = _generator(seed).permutation(x.shape[axis])
    return np.take(x, order, axis=axis)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """``num_samples`` class indices per row of 2-D ``logits`` (unnormalized log-probabilities)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError("`logits` should be a 2-D tensor with shape [batch_size, num_classes]. "
                         f"Received: logits={logits}")
    rng = _generator(seed)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.stack([rng.choice(p.shape[1], size=int(num_samples), p=row) for row in p]
                    ).astype(dtype)


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples of the Gamma distribution of shape ``alpha`` and scale 1."""
    dt = _float_dtype(dtype, "gamma")
    return _generator(seed).gamma(alpha, scale=1.0, size=_shape(shape)).astype(dt)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples of Binomial(``counts``, ``probabilities``), as floats by default."""
    dt = np.dtype(dtype or config.floatx())
    return _generator(seed).binomial(n=counts, p=probabilities, size=_shape(shape)).astype(dt)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Samples of the Beta(``alpha``, ``beta``) distribution."""
    dt = _float_dtype(dtype, "beta")
    return _generator(seed).beta(a=alpha, b=beta, size=_shape(shape)).astype(dt)


def __getattr__(name):
    raise AttributeError(f"module 'unrolled.random' has no attribute '{name}'. "
                         f"unrolled.random offers {_RANDOM_NAMES}.")
