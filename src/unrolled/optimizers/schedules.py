"""Learning-rate schedules: the learning rate as a function of the optimizer's step.

The optimizer calls ``schedule(iterations)`` before incrementing, so the first update
uses ``schedule(0)``. Values are float32 (floatx), as Keras computes them from Python
floats.
"""
import numpy as np

from unrolled.config import floatx


class LearningRateSchedule:
    """Base class: ``__call__(step) -> learning rate`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()`."
        )

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``lr = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``: the rate drops
    in steps every ``decay_steps`` updates.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps, self.decay_rate = decay_steps, decay_rate
        self.staircase, self.name = staircase, name

    def __call__(self, step):
        dt = np.dtype(floatx()).type
        p = dt(step) / dt(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return dt(self.initial_learning_rate) * dt(self.decay_rate) ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``lr = initial_learning_rate / (1 + decay_rate * step / decay_steps)``
    (``floor(step / decay_steps)`` with ``staircase=True``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps, self.decay_rate = decay_steps, decay_rate
        self.staircase, self.name = staircase, name

    def __call__(self, step):
        dt = np.dtype(floatx()).type
        p = dt(step) / dt(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return dt(self.initial_learning_rate) / (dt(1) + dt(self.decay_rate) * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}."
            )
        self.boundaries, self.values, self.name = boundaries, values, name

    def __call__(self, step):
        index = sum(step > b for b in self.boundaries)
        return np.dtype(floatx()).type(self.values[index])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - p) ** power + end`` with ``p = min(step, decay_steps) /
    decay_steps``; with ``cycle=True`` the decay restarts: ``decay_steps`` is multiplied by
    ``ceil(step / decay_steps)`` (1 at step 0) instead of ``step`` being capped."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle = end_learning_rate, power, cycle
        self.name = name

    def __call__(self, step):
        dt = np.dtype(floatx()).type
        step, steps = dt(step), dt(self.decay_steps)
        if self.cycle:
            steps = steps * (dt(1) if step == 0 else np.ceil(step / dt(self.decay_steps)))
        else:
            step = min(step, steps)
        p = step / steps
        start, end = dt(self.initial_learning_rate), dt(self.end_learning_rate)
        return (start - end) * (dt(1) - p) ** dt(self.power) + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


def _cosine(dt, fraction, alpha):
    """``(1 - alpha) * 0.5 * (1 + cos(pi * fraction)) + alpha``, in ``dt``."""
    return (dt(1) - dt(alpha)) * (dt(0.5) * (dt(1) + np.cos(dt(np.pi) * fraction))) + dt(alpha)


class CosineDecay(LearningRateSchedule):
    """Cosine decay from the initial rate to ``alpha`` times it over ``decay_steps``, then
    flat. With ``warmup_target``, first a linear rise from the initial rate to
    ``warmup_target`` over ``warmup_steps``, then the cosine decay from ``warmup_target``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps, self.alpha = (initial_learning_rate,
                                                                    decay_steps, alpha)
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def __call__(self, step):
        dt = np.dtype(floatx()).type
        start, steps, step = dt(self.initial_learning_rate), dt(self.decay_steps), dt(step)
        if self.warmup_target is None:
            return start * _cosine(dt, min(step, steps) / steps, self.alpha)
        target, warmup = dt(self.warmup_target), dt(self.warmup_steps)
        step = min(step, steps + warmup)
        if step < warmup:
            return (target - start) * (step / warmup) + start
        return target * _cosine(dt, (step - warmup) / steps, self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods of ``first_decay_steps``, each
    ``t_mul`` times longer than the last and starting ``m_mul`` times lower."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        if not first_decay_steps > 0:
            raise ValueError("Argument `first_decay_steps` must be > 0. Received: "
                             f"first_decay_steps={first_decay_steps}")
        self.initial_learning_rate, self.first_decay_steps = (initial_learning_rate,
                                                              first_decay_steps)
        self.t_mul, self.m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step):
        dt = np.dtype(floatx()).type
        fraction = dt(step) / dt(self.first_decay_steps)
        t_mul = dt(self.t_mul)
        if t_mul == 1:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:                                    # periods 1, t, t^2, ...: which one, how far
            restart = np.floor(np.log(dt(1) - fraction * (dt(1) - t_mul)) / np.log(t_mul))
            done = (dt(1) - t_mul ** restart) / (dt(1) - t_mul)
            fraction = (fraction - done) / t_mul ** restart
        cosine = dt(0.5) * dt(self.m_mul) ** restart * (dt(1) + np.cos(dt(np.pi) * fraction))
        return dt(self.initial_learning_rate) * ((dt(1) - dt(self.alpha)) * cosine
                                                 + dt(self.alpha))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


def _check_decay_steps(decay_steps):
    if not decay_steps > 0:
        raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")
