"""The optimizer contract: clip, decay, update each variable in place, count the step.

One call of ``apply_gradients`` does, in Keras 3's order:

1. drop ``None`` gradients (a warning names their variables);
2. create the slots (moment buffers) of variables seen for the first time;
3. clip the gradients: ``clipnorm`` (each gradient on its own)
   ``g * c / max(||g||, c)``, else ``global_clipnorm`` (all gradients together)
   ``g * c * min(1/||G||, 1/c)``, else ``clipvalue`` ``clip(g, -c, c)``;
4. decoupled weight decay, if set: ``var -= var * weight_decay * lr``, before the step;
5. ``update_step(g, var, lr)`` for each variable, with ``lr`` the learning rate (or the
   schedule's value) at the current ``iterations``;
6. ``iterations += 1``;
7. each updated variable's ``constraint`` (``unrolled.constraints``), ``var = c(var)``.
   (Keras applies them after the update and before counting the step: the same values.)

An Embedding's gradient arrives in training as ``sparse.IndexedSlices`` (one row per
looked-up position, as Keras's TensorFlow backend gives it); clipping and the optimizers
that set ``sparse_updates`` follow Keras's sparse rule (``sparse.py``), others get row sums.

Arithmetic runs in each variable's dtype. The learning rate is a float32 scalar first
(as Keras's ``learning_rate`` variable is), then cast to the variable's dtype. Python
constants such as ``1 - beta_1`` are rounded to that dtype, except where Keras passes
them through ``cast``/an initializer, which makes a float32 first (``via_float32``):
this matters only for float64 variables.
"""
import re
import signal
import threading
import warnings

import numpy as np

from unrolled.config import floatx
from unrolled.optimizers.schedules import LearningRateSchedule
from unrolled.optimizers.sparse import IndexedSlices
from unrolled.variables import Variable

# Keras optimizer arguments we accept only at their default values.
_UNSUPPORTED_DEFAULTS = {
    "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
    "loss_scale_factor": None, "gradient_accumulation_steps": None,
}


class Optimizer:
    """Base class. Subclasses set ``slot_groups`` and write ``update_step``.

    ``slot_groups()`` lists groups of ``(slot name, initial value)``; Keras creates one
    group for all variables before the next group, and ``variables`` keeps that order:
    ``[iteration, learning_rate, *slots]`` (no ``learning_rate`` with a schedule).
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        for key, value in kwargs.items():
            if key not in _UNSUPPORTED_DEFAULTS:
                raise ValueError(f"Argument(s) not recognized: {{{key!r}: {value!r}}}")
            if value != _UNSUPPORTED_DEFAULTS[key]:
                raise ValueError(
                    f"unrolled optimizers do not implement {key}={value!r}; "
                    f"only the default {key}={_UNSUPPORTED_DEFAULTS[key]!r} is accepted."
                )
        clip_args = sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm))
        if clip_args > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.name = name or _snake_case(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self._iteration = Variable(np.array(0, dtype=np.int64), "iteration", trainable=False,
                                   path=f"{self.name}/iteration")
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
        elif isinstance(learning_rate, float):
            self._learning_rate = Variable(
                np.array(learning_rate, dtype=floatx()), "learning_rate", trainable=False,
                path=f"{self.name}/learning_rate")
        else:
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                "value and returns the corresponding learning rate value). "
                f"Received instead: learning_rate={learning_rate}"
            )
        self._slots = {}            # slot name -> {id(variable): Variable}
        self._seen = []             # variables with slots, in the order first seen
        self._exclude_ids, self._exclude_pattern = set(), None

    # ---- state ----

    @property
    def iterations(self):
        """How many times ``apply_gradients`` has run (an int, starting at 0)."""
        return int(self._iteration.value)

    @property
    def learning_rate(self):
        """The learning rate now: a floatx scalar (a schedule is evaluated at ``iterations``)."""
        lr = self._learning_rate
        if isinstance(lr, Variable):
            return lr.value[()]
        if isinstance(lr, LearningRateSchedule):
            return np.asarray(lr(self.iterations))[()]
        return np.asarray(lr(), dtype=floatx())[()]

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._learning_rate = value
        elif isinstance(self._learning_rate, Variable):
            self._learning_rate.value[...] = value
        else:
            raise TypeError(
                "This optimizer was created with a learning-rate schedule, so its "
                "learning rate cannot be set to a number. Create it with a float instead."
            )

    @property
    def variables(self):
        """The optimizer's own state, in Keras's order; ``model.summary()`` counts these."""
        out = [self._iteration]
        if isinstance(self._learning_rate, Variable):
            out.append(self._learning_rate)
        for group in self.slot_groups():
            for var in self._seen:
                out.extend(self._slots[name][id(var)] for name, _ in group)
        return out

    @property
    def built(self):
        """True once the optimizer has state for some variables (after the first step)."""
        return bool(self._seen)

    def slot_groups(self):
        return []

    def slot(self, variable, name):
        """The slot ``name`` (e.g. "momentum") of ``variable``, as an ndarray."""
        return self._slots[name][id(variable)].value

    def build(self, variables):
        """Create the slots of the variables not seen before (zeros, or the initial value).
        A variable is recorded as seen only with all its slots made, so that an exception
        (Ctrl-C included) in the middle leaves no variable without its slots."""
        for var in variables:
            if any(var is seen for seen in self._seen):
                continue
            prefix = var.path.replace("/", "_")
            made = {}
            for group in self.slot_groups():
                for name, initial in group:
                    slot_name = f"{prefix}_{name}"
                    value = via_float32(initial, var.value.dtype.type)
                    made[name] = Variable(np.full(var.shape, value, dtype=var.value.dtype),
                                          slot_name, trainable=False,
                                          path=f"{self.name}/{slot_name}")
            for name, slot in made.items():
                self._slots.setdefault(name, {})[id(var)] = slot
            self._seen.append(var)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Skip weight decay for these variables, or for any variable whose path matches
        one of the regular expressions in ``var_names`` (Keras's TensorFlow backend
        matches the TF variable name, which is the path, e.g. ``"dense/bias"``)."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var):
        if id(var) in self._exclude_ids:
            return False
        return not (self._exclude_pattern and self._exclude_pattern.search(var.path))

    # ---- the step ----

    def apply_gradients(self, grads_and_vars):
        """Apply ``[(gradient, variable), ...]``; returns ``iterations`` after the step."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(grads, variables)
        return self.iterations

    def apply(self, grads, variables=None):
        """Update ``variables`` (``Variable``s, changed in place) with ``grads``."""
        if len(grads) == 0:
            return
        if variables is None:
            if len(grads) != len(self._seen):
                raise ValueError(
                    f"apply(grads) without variables needs one gradient per variable the "
                    f"optimizer was built with: expected {len(self._seen)}, got {len(grads)}."
                )
            variables = self._seen
        grads, variables = self._filter_none(list(grads), list(variables))
        for g, var in zip(grads, variables):
            if not hasattr(var, "value") or not hasattr(var, "path"):
                raise TypeError(
                    f"Optimizers update unrolled Variables in place; got {type(var).__name__}."
                )
            if np.shape(g) != var.shape:
                raise ValueError(
                    f"Gradient of shape {np.shape(g)} does not match variable "
                    f"'{var.path}' of shape {var.shape}."
                )
        self.build(variables)
        grads = self._clip([g if isinstance(g, IndexedSlices) else np.asarray(g)
                            for g in grads])
        with WholeStep():                   # every variable updated and counted, or none
            self._update(grads, variables)
            for var in variables:           # the weights' constraints, after the update (Keras)
                constraint = getattr(var, "constraint", None)
                if constraint is not None:
                    var.assign(np.asarray(constraint(var.value), dtype=var.value.dtype))

    def _update(self, grads, variables):
        if self.weight_decay is not None:
            for var in variables:
                if self._use_weight_decay(var):
                    dt = var.value.dtype.type
                    lr, wd = dt(self.learning_rate), via_float32(self.weight_decay, dt)
                    var.value -= var.value * wd * lr
        lr = self.learning_rate
        for g, var in zip(grads, variables):
            if isinstance(g, IndexedSlices) and not self.sparse_updates:
                g = g.dense()
            self.update_step(g.astype(var.value.dtype, copy=False), var,
                             var.value.dtype.type(lr))
        self._iteration.value += 1

    # True where ``update_step`` takes an ``IndexedSlices`` (an Embedding's gradient in
    # training) and applies Keras's sparse rule (see sparse.py); else it gets row sums.
    sparse_updates = False

    def update_step(self, gradient, variable, learning_rate):
        raise NotImplementedError

    @staticmethod
    def _filter_none(grads, variables):
        kept = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if not kept:
            raise ValueError("No gradients provided for any variable.")
        if len(kept) < len(grads):
            missing = [getattr(v, "path", v) for g, v in zip(grads, variables) if g is None]
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing "
                          "the loss.", stacklevel=3)
        return [g for g, _ in kept], [v for _, v in kept]

    def _clip(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            return [_clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return _clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            v = self.clipvalue
            return [_map_values(g, lambda a: np.clip(a, a.dtype.type(-v), a.dtype.type(v)))
                    for g in grads]
        return grads

    def get_config(self):
        """Keras's config keys and values (the float32 learning rate as a Python float)."""
        lr = self._learning_rate
        if isinstance(lr, Variable):
            lr = float(lr.value)
        elif isinstance(lr, LearningRateSchedule):
            lr = {"module": "keras.optimizers.schedules", "class_name": type(lr).__name__,
                  "config": lr.get_config(), "registered_name": None}
        return {
            "name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue, **_UNSUPPORTED_DEFAULTS,
        }

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} iterations={self.iterations}>"


class WholeStep:
    """A block that Ctrl-C does not cut in two: a SIGINT that arrives during it raises
    ``KeyboardInterrupt`` right after it. An optimizer step updates its variables one by
    one, in place; interrupted halfway it would leave some updated and others not, and
    ``iterations`` behind. Only in the main thread and while Python's own SIGINT handler is
    installed (anything else is the program's choice, kept as it is); exceptions raised in
    the block propagate as they are."""

    __slots__ = ("previous", "interrupted")

    def __enter__(self):
        self.previous, self.interrupted = None, False
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._later)
        return self

    def _later(self, signum, frame):
        self.interrupted = True

    def __exit__(self, kind, value, traceback):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            if self.interrupted and kind is None:
                raise KeyboardInterrupt
        return False


def via_float32(value, dtype):
    """A Python float the way Keras's ``cast(value, dtype)`` makes it: float32 first,
    then ``dtype`` (``0.9`` becomes ``0.8999999761581421`` in a float64 update)."""
    return dtype(np.float32(value))


def _map_values(g, fn):
    """``fn`` on an ndarray, or on each position's row of an ``IndexedSlices``."""
    return g.with_values(fn(g.values)) if isinstance(g, IndexedSlices) else fn(g)


def _clip_by_norm(g, clipnorm):
    """``g * c / max(||g||, c)``: unchanged if ``||g|| <= c``, else rescaled to norm ``c``.
    For an ``IndexedSlices`` the norm is that of its per-position rows, as in Keras."""
    if isinstance(g, IndexedSlices):
        return g.with_values(_clip_by_norm(g.values, clipnorm))
    dt = g.dtype.type
    l2sum = np.sum(np.square(g), dtype=g.dtype)
    l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
    return (g * dt(clipnorm)) / np.maximum(l2norm, dt(clipnorm))


def _clip_by_global_norm(grads, clip_norm):
    """``g * c * min(1/||G||, 1/c)`` with ``||G||`` the norm of all gradients together.
    An ``IndexedSlices`` counts its per-position squares and comes out dense, as in Keras."""
    dt = grads[0].dtype.type
    values = [g.values if isinstance(g, IndexedSlices) else g for g in grads]
    norm = np.sqrt(np.sum([np.sum(np.square(g), dtype=g.dtype) for g in values], dtype=dt))
    scale = dt(clip_norm) * np.minimum(dt(1.0) / norm, dt(1.0 / clip_norm))
    scale = scale + (norm - norm)  # NaN if the norm is inf or NaN, as Keras
    return [(g.dense() if isinstance(g, IndexedSlices) else g) * scale for g in grads]


def _snake_case(name):
    """Keras's default optimizer names: "Adam" -> "adam", "RMSprop" -> "rm_sprop"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
