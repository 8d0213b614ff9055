"""Weight initializers with Keras's names, defaults and fan rules.

Each initializer is called as ``init(shape, dtype)`` and draws from the package's seedable
NumPy Generator (``unrolled.utils.set_random_seed``). Keras draws from its own backend
RNG, so values can't match Keras bit for bit; the distributions (bounds, scales,
orthogonality) do.
"""
import math

import numpy as np

from . import utils
from .config import standardize_dtype


def _fans(shape):
    """Keras's fan_in and fan_out: 2-D ``(in, out)``; conv kernels scale by the receptive field."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=standardize_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class _Random(Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        # A fixed seed gives the same draw on every call, as a seeded Keras initializer does.
        return np.random.default_rng(self.seed) if self.seed is not None else utils.rng()

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(_Random):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        x = self._rng().normal(self.mean, self.stddev, size=shape)
        return x.astype(standardize_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Random):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        x = self._rng().uniform(self.minval, self.maxval, size=shape)
        return x.astype(standardize_dtype(dtype))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class GlorotUniform(_Random):
    """U(-limit, limit) with ``limit = sqrt(6 / (fan_in + fan_out))``.

    A fused recurrent kernel such as LSTM's ``(M, 4M)`` is one matrix here, so its
    fan_out is 4M, as in Keras.
    """

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))
        return self._rng().uniform(-limit, limit, size=shape).astype(standardize_dtype(dtype))


class GlorotNormal(_Random):
    """Truncated normal with ``stddev = sqrt(2 / (fan_in + fan_out)) / .87962566``."""

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        stddev = math.sqrt(1.0 / max(1.0, (fan_in + fan_out) / 2.0)) / 0.87962566103423978
        return _truncated_normal(self._rng(), stddev, shape).astype(standardize_dtype(dtype))


class HeUniform(_Random):
    def __call__(self, shape, dtype=None):
        fan_in, _ = _fans(shape)
        limit = math.sqrt(6.0 / max(1.0, fan_in))
        return self._rng().uniform(-limit, limit, size=shape).astype(standardize_dtype(dtype))


def _truncated_normal(rng, stddev, shape):
    # Values beyond two standard deviations are drawn again.
    x = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(x) > 2
    return x * stddev


class Orthogonal(_Random):
    """A (semi-)orthogonal matrix, from the QR decomposition of a Gaussian draw.

    The shape is flattened to ``(rows, cols) = (prod(shape[:-1]), shape[-1])``. With
    ``rows < cols`` (LSTM's ``(M, 4M)``) the rows are orthonormal: the gate blocks
    together, not each block alone, as Keras does it.
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) < 2:
            raise ValueError(
                f"The Orthogonal initializer needs a shape of rank >= 2; received {tuple(shape)}."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = _qr_one_thread(a)
        q *= np.sign(np.diag(r))  # make the decomposition unique
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(standardize_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


def _qr_one_thread(a):
    """``np.linalg.qr(a)`` with NumPy's BLAS on one thread (threadpoolctl, when installed),
    its thread count put back after. LAPACK's QR makes many small BLAS calls, each split over
    every core and joined: on a busy 2-core machine the (512, 128) draw of an LSTM(128)
    took 80-1470 ms on OpenBLAS's two threads against 6-14 ms on one (fresh processes,
    alternating; 16-37 ms against 82-157 ms at (1024, 256)). The result has the same bits."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return np.linalg.qr(a)
    with threadpool_limits(1, user_api="blas"):
        return np.linalg.qr(a)


class TruncatedNormal(_Random):
    """Normal draws beyond two standard deviations drawn again, as Keras's."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        x = self.mean + _truncated_normal(self._rng(), self.stddev, shape)
        return x.astype(standardize_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_Random):
    """Keras's VarianceScaling: ``n`` is fan_in, fan_out or their mean (``mode``); draws
    have variance ``scale / n``: truncated normal (stddev divided by .87962566, as the
    truncation at two standard deviations shrinks it), untruncated normal, or uniform on
    ``+-sqrt(3 scale / n)``. Keras 2 called the truncated one ``"normal"``."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if distribution == "normal":
            distribution = "truncated_normal"
        if not scale > 0:
            raise ValueError(f"`scale` must be positive; received scale={scale}.")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument: {mode!r}; expected fan_in, fan_out or "
                             "fan_avg.")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"Invalid `distribution` argument: {distribution!r}; expected "
                             "truncated_normal, untruncated_normal or uniform.")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            x = self._rng().uniform(-limit, limit, size=shape)
        elif self.distribution == "untruncated_normal":
            x = self._rng().normal(0.0, math.sqrt(variance), size=shape)
        else:
            x = _truncated_normal(self._rng(), math.sqrt(variance) / 0.87962566103423978, shape)
        return x.astype(standardize_dtype(dtype))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class _Scaled(VarianceScaling):
    """A named VarianceScaling (Keras's HeNormal, LecunNormal, LecunUniform)."""
    PARAMS = None

    def __init__(self, seed=None):
        super().__init__(*self.PARAMS, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(_Scaled):
    PARAMS = (2.0, "fan_in", "truncated_normal")


class LecunNormal(_Scaled):
    PARAMS = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_Scaled):
    PARAMS = (1.0, "fan_in", "uniform")


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only, as in Keras)."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={tuple(shape)} of rank {len(shape)}.")
        return (self.gain * np.eye(*shape)).astype(standardize_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


_NAMES = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
}
# Keras's other spellings (``keras.initializers.get("uniform")`` is a RandomUniform; Keras's
# MinimalRNNCell example writes it); an initializer built from one says its class's name.
_ALIASES = {"uniform": RandomUniform, "normal": RandomNormal, "one": Ones, "zero": Zeros}
_CLASSES = {cls.__name__: cls for cls in _NAMES.values()}
_CLASSES.update(OrthogonalInitializer=Orthogonal, IdentityInitializer=Identity)  # Keras 3.2-3.4


def get(identifier):
    """An initializer from a Keras name ('glorot_uniform'), a class name or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier) or _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown initializer {identifier!r}. Expected one of "
                f"{sorted({**_NAMES, **_ALIASES})}."
            )
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _CLASSES.get(identifier["class_name"])
        if cls is None:
            raise ValueError(
                f"Unknown initializer class {identifier['class_name']!r}. "
                f"Expected one of {sorted(_CLASSES)}."
            )
        return cls(**identifier.get("config", {}))
    raise TypeError(
        f"Could not interpret initializer {identifier!r}: pass a name such as "
        "'glorot_uniform' or an unrolled.initializers.Initializer."
    )


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}
