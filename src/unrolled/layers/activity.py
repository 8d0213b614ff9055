"""Keras's ``activity_regularizer``, for every layer (``Layer`` inherits it).

A layer with an activity regularizer ``R`` adds ``R(y) / B`` to the loss for each output
``y`` of each call (``B``: that output's batch size, 0 for an empty batch; every output of
a recurrent layer with ``return_state``), in ``fit``, ``train_on_batch`` and ``evaluate``,
as Keras 3 (and tf.keras 2) does. Setting the regularizer wraps the layer's own
``forward``, ``call`` and ``backward`` on that instance only:

    forward:   y, cache = layer's forward(x);  record R(y) / B;  keep y in the cache
    backward:  L = sum(y * dy) + R(y) / B  =>  dL/dy = dy + R'(y) / B, then layer's backward

so the penalty's gradient enters the backward of the layer's outputs, whatever the layer.
``ActivityRegularization`` is the identity with ``R = L1L2(l1, l2)``. Models collect the
penalties of a pass (``models/training.py``).
"""
import numpy as np

from .. import regularizers as regularizers_mod
from ..utils import to_list


# Whether any layer of this process was given an activity regularizer: until one is, a
# training step need not look for them (it saves a walk over the layers per step).
IN_USE = False


class ActivityCache(tuple):
    """The forward cache of a layer with an activity regularizer. It reads as the layer's
    own cache (``inner``: its items when it is a tuple, its attributes), so code that
    inspects caches (``unrolled.explain``) sees the usual one; it also keeps the outputs,
    whose penalty's gradient the backward adds."""

    def __new__(cls, inner, outputs):
        self = super().__new__(cls, inner if isinstance(inner, tuple) else ())
        self.inner, self.outputs = inner, outputs
        return self

    def __getattr__(self, name):                 # what the tuple lacks: the inner cache's
        if name in ("inner", "outputs"):
            raise AttributeError(name)
        return getattr(self.inner, name)


class ActivityRegularized:
    """The activity-regularizer half of ``Layer`` (a mixin): ``activity_regularizer``,
    ``losses`` and the wrappers of ``forward``/``call``/``backward``. ``Layer.__init__``
    sets ``_penalties``, ``_collecting``, ``_in_call`` and the regularizer."""

    @property
    def activity_regularizer(self):
        """A regularizer ``R`` of the layer's outputs: each call adds ``R(y) / B`` for each
        output ``y`` (``B``: its batch size; 0 for an empty batch) to the loss, in ``fit``,
        ``train_on_batch`` and ``evaluate``, as Keras 3 does (``layer.losses``)."""
        return self.__dict__.get("_activity_regularizer")

    @activity_regularizer.setter
    def activity_regularizer(self, rule):
        rule = regularizers_mod.get(rule)        # L1, L2, L1L2, names; refuses the others
        if rule is not None and hasattr(type(self), "step"):
            raise NotImplementedError(
                f"{type(self).__name__}(activity_regularizer=...): an activity regularizer on "
                "a recurrent cell is not implemented in unrolled; give it to the recurrent "
                "layer (LSTM(..., activity_regularizer=...)), which regularizes its outputs.")
        if rule is not None and hasattr(type(self), "_run_graph"):
            raise NotImplementedError(
                f"{type(self).__name__}(activity_regularizer=...): an activity regularizer on "
                "a model is not implemented in unrolled; give it to the model's output layer.")
        self._activity_regularizer = rule
        if rule is not None:
            global IN_USE
            IN_USE = True
        # The layer's own forward/call/backward are wrapped on this instance only (the class
        # and layers without a regularizer are untouched): forward records the penalties and
        # keeps the outputs in the cache, backward adds the penalties' gradient.
        for method in ("forward", "call", "backward"):
            if rule is None:
                self.__dict__.pop(method, None)
            else:
                self.__dict__[method] = getattr(self, f"_regularized_{method}")

    def _record_activity(self, outputs):
        """Append ``R(y) / B`` for each output ``y`` (Keras: every flattened output)."""
        rule = self._activity_regularizer
        if not self._collecting:
            self._penalties.clear()                         # outside training: the last call's
        for y in to_list(outputs):
            if y is None:
                continue
            y = np.asarray(y)
            t = y.dtype.type if y.dtype.kind == "f" else np.float32
            penalty = t(rule(y))
            if y.ndim > 0:                                  # Keras's divide_no_nan
                penalty = t(penalty / t(y.shape[0])) if y.shape[0] else t(0)
            self._penalties.append(float(penalty))

    def _regularized_forward(self, inputs, **kwargs):
        outputs, cache = type(self).forward(self, inputs, **kwargs)
        if not self._in_call:                               # (call records once, itself)
            self._record_activity(outputs)
        return outputs, ActivityCache(cache, outputs)

    def _regularized_call(self, inputs, *args, **kwargs):
        self._in_call = True
        try:
            outputs = type(self).call(self, inputs, *args, **kwargs)
        finally:
            self._in_call = False
        self._record_activity(outputs)
        return outputs

    def _regularized_backward(self, cache, doutputs, *args, **kwargs):
        inner, outputs = cache.inner, cache.outputs
        # L = sum(y * dy) + R(y) / B  =>  dL/dy = dy + R'(y) / B, for each output y
        multi = isinstance(outputs, (list, tuple))
        ys, dys = (list(outputs), list(doutputs)) if multi else ([outputs], [doutputs])
        for i, y in enumerate(ys):
            y = np.asarray(y)
            if y.dtype.kind != "f" or (y.ndim and not y.shape[0]):
                continue                                    # no float output, or no sample
            g = self._activity_regularizer.gradient(y)
            if y.ndim:
                g = g / y.dtype.type(y.shape[0])
            dys[i] = g if dys[i] is None else dys[i] + g
        return type(self).backward(self, inner, dys if multi else dys[0], *args, **kwargs)

    @property
    def losses(self):
        """The penalties, floats, as Keras's ``layer.losses`` lists them: the activity
        penalties of the last call (in a model's ``fit``/``evaluate`` step, those of every
        call of the pass), this layer's then its sublayers' (Keras's ``_flatten_layers``
        order: the sublayers in order, each followed by its own, those last first), then the
        weight regularizers' of the trainable weights."""
        found, stack = list(self._penalties), list(reversed(self._sublayers()))
        while stack:
            layer = stack.pop()
            found += getattr(layer, "_penalties", [])
            stack.extend(layer._sublayers())
        return found + [float(w.regularizer(w.value)) for w in self.trainable_weights
                        if getattr(w, "regularizer", None) is not None]

    def _clear_losses(self):
        self._penalties = []
