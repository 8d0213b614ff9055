"""Training: ``compile``, ``fit``, ``evaluate``, ``train_on_batch`` and ``gradients``.

One training step is three visible lines::

    y_pred, tape = model.forward(x, training=True)         # forward, keeping caches
    _, grads = model.backward(tape, loss.gradient(y, y_pred))  # backpropagation
    optimizer.apply(grads, model.trainable_weights)          # the update rule

The epoch's ``loss`` in the History is the mean of the batch losses weighted by batch
size, as Keras's loss tracker computes it.
"""
import contextlib
import warnings

import numpy as np

from .. import memory
from ..layers import activity
from ..layers.custom import refuse_missing_backward
from ..fast.threads import limit as blas_threads
from ..progbar import Progbar
from ..utils import to_list
from . import data, sources
from .checks import check_sample_weight, check_xy, refuse_training_only


class Trainer:
    """The training half of ``Model`` (a mixin)."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._metric_ids, self._metrics = [], []
        self._loss_sparse = False
        self._output_mask = None            # the last step's output mask, for the metrics

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, jit_compile="auto", **kwargs):
        """Choose the optimizer, the loss and the metrics, as ``keras.Model.compile``."""
        from .. import losses as losses_mod
        from .. import metrics as metrics_mod
        from .. import optimizers as optimizers_mod

        if kwargs:
            raise TypeError(f"Invalid keyword arguments to compile: {sorted(kwargs)}.")
        for name, value in (("weighted_metrics", weighted_metrics), ("loss_weights", loss_weights)):
            if value is not None and not (isinstance(value, (list, tuple, dict)) and not value):
                raise NotImplementedError(
                    f"compile({name}=...) is not implemented in unrolled; it would be ignored. "
                    "Leave it out (metrics=... are unweighted, as in Keras)."
                )
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss) if loss is not None else None
        self._loss_sparse = "sparse" in type(self.loss).__name__.lower() if self.loss is not None else False
        if metrics is not None:
            self._metric_ids = to_list(metrics)
            for m in self._metric_ids:          # unknown names fail here, not mid-fit
                if not (isinstance(m, str) and m.lower() in ("accuracy", "acc")):
                    metrics_mod.get(m)
            self._metrics = []                  # built from the first batch's shapes, as Keras
        # else: as Keras 3 does, a compile without metrics keeps the previous compile's
        self._compile_args = {"loss": loss, "metrics": list(self._metric_ids)}
        self.compiled = True

    def _build_metrics(self, y_true, y_pred):
        from .. import metrics as metrics_mod
        if len(self._metrics) != len(self._metric_ids):
            self._metrics = [metrics_mod.for_compile(m, np.shape(y_true), np.shape(y_pred))
                             for m in self._metric_ids]

    def _log_names(self):
        """The metrics' log names in compile order. Two metrics of one name (``metrics=
        ["mae", "mae"]``) both log, the second as ``mae_1``, the third ``mae_2``, as Keras's
        ``CompileMetrics.result`` names them."""
        names, seen = [], {}
        for m in self._metrics:
            if m.name in seen:
                seen[m.name] += 1
                names.append(f"{m.name}_{seen[m.name] - 1}")
            else:
                seen[m.name] = 1
                names.append(m.name)
        return names

    def _logs(self, loss, value):
        """``{"loss": loss, name: value(metric)...}`` with its keys sorted, as Keras 3 hands
        logs to callbacks, the progress bar, History and ``return_dict`` (its logs pass
        through ``tree``, which sorts dict keys): ``accuracy`` comes before ``loss``."""
        logs = {"loss": loss, **dict(zip(self._log_names(), map(value, self._metrics)))}
        return dict(sorted(logs.items()))

    @property
    def metrics_names(self):
        return ["loss"] + [m.name if hasattr(m, "name") else str(m) for m in self._metric_ids]

    def _require_compiled(self, what):
        if not self.compiled or self.loss is None:
            raise ValueError(
                f"You must call `compile()` with a loss before calling `{what}()`, e.g. "
                "model.compile(optimizer='adam', loss='mse')."
            )

    # --- the training step ------------------------------------------------------------------
    def gradients(self, x, y, sample_weight=None):
        """``(loss, grads)``: the loss on ``(x, y)`` and dLoss/dW for each weight in
        ``get_weights()`` order. Nothing is updated."""
        self._require_compiled("gradients")
        xs, ys = check_xy(self, x, y)
        sample_weight = check_sample_weight(sample_weight, len(ys))
        loss, grads, _ = self._loss_and_grads(xs, ys, sample_weight, training=False)
        return loss, grads

    def _loss_and_grads(self, xs, ys, sample_weight, training, sparse=False):
        # The output's mask (mask_zero/Masking down a return_sequences path) weighs the
        # loss as Keras's y_pred._keras_mask does; it is kept for the metrics' update.
        with self._activity_penalties() as active:
            y_pred, tape, mask = self._run_graph(self._pack(xs), training, keep_tape=True)
        self._output_mask = mask
        loss = float(self.loss(ys, y_pred, sample_weight=sample_weight, mask=mask))
        dy = self.loss.gradient(ys, y_pred, sample_weight=sample_weight, mask=mask)
        _, grads = self.backward(tape, dy, input_gradients=False, sparse=sparse)  # BPTT
        # (the backward of a layer with an activity regularizer added its penalty's gradient)
        return loss + self._regularize(grads) + self._activity_loss(active), grads, y_pred

    def _activity_layers(self, refuse=True):
        """The layers with an ``activity_regularizer`` here and in nested models and
        Bidirectional wrappers, in Keras's ``_flatten_layers`` order (the model's layers in
        order, each followed by its sublayers, last first), so ``losses`` lists them as
        Keras does. One inside another wrapper (TimeDistributed) is refused (``refuse``;
        else left out, as Keras's ``losses`` has nothing from it): Keras's TimeDistributed
        runs the inner layer's ``call``, which adds no penalty (tf.keras 2 added it divided
        by batch * timesteps), and unrolled implements neither."""
        if not activity.IN_USE:
            return []
        from ..layers.wrappers import Bidirectional
        found, stack = [], [(layer, None) for layer in reversed(self.layers)]
        while stack:
            layer, wrapper = stack.pop()
            if getattr(layer, "activity_regularizer", None) is not None:
                if wrapper is None:
                    found.append(layer)
                elif refuse:
                    raise NotImplementedError(
                        f"Layer '{layer.name}' ({type(layer).__name__}) inside "
                        f"'{wrapper.name}' ({type(wrapper).__name__}) has an activity "
                        "regularizer: Keras 3 adds no activity penalty there, and unrolled "
                        "does not implement that case; put the regularizer on the wrapper.")
            passes = isinstance(layer, (Trainer, Bidirectional))   # their layers are called
            inner = wrapper if passes else (wrapper or layer)
            stack.extend((sub, inner) for sub in layer._sublayers())
        return found

    @contextlib.contextmanager
    def _activity_penalties(self):
        """Inside: the layers with an activity regularizer record every penalty of the pass
        (one per output per call), their earlier ones cleared (as Keras clears ``losses``
        before each call of the model)."""
        found = self._activity_layers()
        for layer in found:
            layer._clear_losses()
            layer._collecting = True                 # (else a layer keeps its last call's)
        try:
            yield found
        finally:
            for layer in found:
                layer._collecting = False

    @staticmethod
    def _activity_loss(layers):
        return float(sum(p for layer in layers for p in layer._penalties))

    def _regularize(self, grads=None):
        """The weight regularizers' penalties, summed (added to the loss, as Keras's
        ``model.losses``), for the trainable weights; with ``grads`` (aligned with
        ``self.weights``) each penalty's gradient is added to its weight's. An Embedding's
        row gradient becomes dense then, as TensorFlow sums a dense and a sparse gradient."""
        total = 0.0
        trainable = None
        for i, w in enumerate(self.weights):
            if getattr(w, "regularizer", None) is None:
                continue
            if trainable is None:
                trainable = {id(v) for v in self.trainable_weights}
            if id(w) not in trainable:
                continue
            total += float(w.regularizer(w.value))
            if grads is not None:
                g = grads[i]
                g = g.dense() if hasattr(g, "dense") else g
                penalty = w.regularizer.gradient(w.value)
                grads[i] = penalty if g is None else g + penalty
        return total

    @property
    def losses(self):
        """The penalties added to the loss, one float each, as Keras's ``model.losses``
        lists them: the activity penalties of the last pass (``activity_regularizer``s and
        ``ActivityRegularization``), then the weight regularizers' of the trainable weights."""
        trainable = {id(v) for v in self.trainable_weights}
        found = [p for layer in self._activity_layers(refuse=False)         # activity first
                 for p in layer._penalties]
        return found + [float(w.regularizer(w.value)) for w in self.weights
                        if getattr(w, "regularizer", None) is not None and id(w) in trainable]

    def _test_step(self, xs, ys, sample_weight):
        with self._activity_penalties() as active:
            y_pred, _, mask = self._run_graph(self._pack(xs), False, keep_tape=False)
        self._output_mask = mask
        loss = float(self.loss(ys, y_pred, sample_weight=sample_weight, mask=mask))
        return loss + self._regularize() + self._activity_loss(active), y_pred

    def _train_step(self, xs, ys, sample_weight):
        memory.keep_freed_memory()          # reuse last step's buffers (see unrolled.memory)
        # sparse: an Embedding's gradient reaches the optimizer as Keras's TF backend gives it
        loss, grads, y_pred = self._loss_and_grads(xs, ys, sample_weight, training=True,
                                                   sparse=True)
        trainable = self.trainable_weights
        ids = {id(w) for w in trainable}
        pairs = [(g, w) for g, w in zip(grads, self.weights) if id(w) in ids]
        self.optimizer.apply([g for g, _ in pairs], [w for _, w in pairs])
        return loss, y_pred

    def _update_metrics(self, ys, y_pred, sample_weight):
        # Keras's compile(metrics=...) metrics are unweighted; sample_weight goes to the loss.
        # The output mask of the step just run weighs them 0/1 per time step.
        from ..metrics import MeanMetricWrapper
        self._build_metrics(ys, y_pred)
        mask = getattr(self, "_output_mask", None)
        for m in self._metrics:
            if mask is not None and isinstance(m, MeanMetricWrapper):
                m.update_state(ys, y_pred, mask=mask)
            else:
                m.update_state(ys, y_pred)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics)."""
        self._require_compiled("train_on_batch")
        refuse_training_only(self, "train_on_batch")
        refuse_missing_backward(self, "train_on_batch")
        xs, ys = check_xy(self, x, y)
        sample_weight = check_sample_weight(sample_weight, len(ys))
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError(
                    "train_on_batch: `class_weight` and `sample_weight` cannot be given together.")
            sample_weight = data.class_weight_to_sample_weight(
                ys, class_weight, len(self.outputs[0].shape), self.outputs[0].dtype)
        for m in self._metrics:
            m.reset_state()
        with blas_threads(self, len(ys), "train"):
            loss, y_pred = self._train_step(xs, ys, sample_weight)
        self._update_metrics(ys, y_pred, sample_weight)
        return self._result(loss, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        xs, ys = check_xy(self, x, y)
        sample_weight = check_sample_weight(sample_weight, len(ys))
        for m in self._metrics:
            m.reset_state()
        with blas_threads(self, len(ys), "test"):
            loss, y_pred = self._test_step(xs, ys, sample_weight)
        self._update_metrics(ys, y_pred, sample_weight)
        return self._result(loss, return_dict)

    def _result(self, loss, return_dict):
        return self._result_from_logs(self._logs(loss, lambda m: float(m.result())),
                                      return_dict)

    # --- loops -----------------------------------------------------------------------------
    def _run_epoch(self, batches, train, callbacks=None, bar=None):
        """One pass over ``batches`` (``(xs, y, sample_weight)`` per batch, from
        ``sources``): train or test steps, with the callbacks' batch hooks; returns the logs
        (loss: batch losses averaged by batch size), empty when there was no batch."""
        for m in self._metrics:
            m.reset_state()
        total, count = 0.0, 0
        logs = {}
        kind = "train" if train else "test"
        for step, (bx, by, bsw) in enumerate(batches):
            if callbacks is not None:
                getattr(callbacks, f"on_{kind}_batch_begin")(step)
            with blas_threads(self, len(by), kind):
                if train:
                    loss, y_pred = self._train_step(bx, by, bsw)
                else:
                    loss, y_pred = self._test_step(bx, by, bsw)
            total += loss * len(by)                    # Keras's loss tracker: weighted by batch size
            count += len(by)
            self._update_metrics(by, y_pred, bsw)
            logs = self._logs(total / count, lambda m: float(m.result()))
            if callbacks is not None:
                getattr(callbacks, f"on_{kind}_batch_end")(step, logs)
            if bar is not None:
                bar.update(step + 1, logs)
            if train and self.stop_training:
                break
        self._steps_done = len(logs) and step + 1
        return logs

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for epochs ``initial_epoch`` to ``epochs - 1``; returns a ``History`` whose
        ``history`` dict has Keras's keys (``loss``, metric names, ``val_`` versions).
        Batching, ``steps_per_epoch`` and ``class_weight`` follow ``models.data``."""
        from ..callbacks import CallbackList, History

        self._require_compiled("fit")
        refuse_training_only(self, "fit")
        refuse_missing_backward(self, "fit")
        validation_freq = data.check_validation_freq(validation_freq)
        if sources.is_batch_source(x):
            sources.refuse_with_batches("x", y=y, sample_weight=sample_weight,
                                        validation_split=validation_split)
            if class_weight is not None:
                raise NotImplementedError("fit: `class_weight` with batches from a generator or "
                                          "a PyDataset is not implemented; give sample weights "
                                          "in the batches instead.")
            train_source = sources.BatchSource(x, data.check_steps("steps_per_epoch",
                                                                   steps_per_epoch),
                                               shuffle, self._standardize_batch)
            val = None
        else:
            xs, ys = check_xy(self, x, y)
            sw = check_sample_weight(sample_weight, xs[0].shape[0])
            if class_weight is not None and sw is not None:
                raise ValueError("fit: `class_weight` and `sample_weight` cannot be given "
                                 "together.")
            if not 0 <= validation_split < 1:
                raise ValueError(f"validation_split must be in [0, 1); received "
                                 f"{validation_split}.")
            val = None
            if validation_split and validation_data is None:
                n = xs[0].shape[0]
                split = int(n * (1 - validation_split))
                if split == 0 or split == n:
                    raise ValueError(
                        f"validation_split={validation_split} leaves no training or no "
                        f"validation samples out of {n}.")
                val = sources.ArraySource(
                    [a[split:] for a in xs], ys[split:], None if sw is None else sw[split:],
                    data.Batches(n - split, validation_batch_size or batch_size,
                                 validation_steps, what="validation_steps"))
                xs, ys = [a[:split] for a in xs], ys[:split]
                sw = None if sw is None else sw[:split]
            if class_weight is not None:    # after the split: validation stays unweighted
                sw = data.class_weight_to_sample_weight(ys, class_weight,
                                                        len(self.outputs[0].shape),
                                                        self.outputs[0].dtype)
            train_source = sources.ArraySource(xs, ys, sw, data.Batches(
                xs[0].shape[0], batch_size, steps_per_epoch, shuffle))
        if validation_data is not None:
            val = self._source(validation_data, validation_batch_size or batch_size,
                               validation_steps, "validation_data", "validation_steps")
        verbose = 1 if verbose == "auto" else verbose
        history = History()
        cbs = CallbackList(to_list(callbacks) + [history], model=self,
                           params={"epochs": epochs, "verbose": verbose,
                                   "steps": train_source.num_batches})
        self.stop_training = False
        cbs.on_train_begin()
        # a callback (BackupAndRestore) may restore a later start in on_train_begin, as Keras
        restored, self._initial_epoch = getattr(self, "_initial_epoch", None), None
        initial_epoch = restored or initial_epoch
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            if verbose and epochs > 1:
                print(f"Epoch {epoch + 1}/{epochs}")
            known = train_source.num_batches
            bar = (Progbar(known, verbose=verbose, wait_for_finalize=True)
                   if verbose and known else None)
            logs = self._run_epoch(train_source.epoch(), True, cbs,
                                   bar if verbose == 1 else None)
            train_source.end_epoch()
            if not logs:                  # a generator that had ended: Keras stops here
                warnings.warn("Your input ran out of data; interrupting training. Make sure "
                              "that your dataset or generator can generate at least "
                              "`steps_per_epoch * epochs` batches.", stacklevel=2)
                break
            if val is not None and data.should_validate(epoch, validation_freq):
                vlogs = self._test_loop(val, cbs)
                logs.update({f"val_{k}": v for k, v in vlogs.items()})
            if verbose and bar is None:   # batches of unknown count: the epoch's line only
                bar = Progbar(self._steps_done, verbose=verbose)
            if bar is not None:
                bar.update(bar.target, logs, finalize=True)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        self.history = history
        return history

    def _standardize_batch(self, batch, what="a batch"):
        """One batch from a generator or PyDataset, checked as fit checks arrays."""
        bx, by, bsw = data.unpack(batch, what)
        xs, ys = check_xy(self, bx, by, what)
        return xs, ys, check_sample_weight(bsw, len(ys))

    def _source(self, value, batch_size, steps, what, steps_name):
        """Batches of ``value``: a batch source as it is, or an ``(x, y[, sw])`` tuple."""
        if sources.is_batch_source(value):
            return sources.BatchSource(value, data.check_steps(steps_name, steps), False,
                                       self._standardize_batch, what)
        vx, vy, vsw = data.unpack(value, what)
        vxs, vys = check_xy(self, vx, vy, what)
        vsw = check_sample_weight(vsw, len(vys), f"{what} sample_weight")
        return sources.ArraySource(vxs, vys, vsw, data.Batches(
            len(vys), batch_size, steps, what=steps_name))

    def _test_loop(self, source, callbacks, bar=None):
        callbacks.on_test_begin()
        source.reset()
        logs = self._run_epoch(source.epoch(), False, callbacks, bar)
        source.end_epoch()
        callbacks.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """The loss (and metrics) on ``(x, y)``, averaged over batches as Keras does;
        ``steps`` evaluates the first that many batches only."""
        from ..callbacks import CallbackList

        if kwargs:
            raise ValueError(f"evaluate: arguments not recognized: {sorted(kwargs)}.")
        self._require_compiled("evaluate")
        if sources.is_batch_source(x):
            sources.refuse_with_batches("x", y=y, sample_weight=sample_weight)
            source = self._source(x, batch_size, steps, "x", "steps")
        else:
            xs, ys = check_xy(self, x, y, allow_empty=True)
            sw = check_sample_weight(sample_weight, xs[0].shape[0])
            if xs[0].shape[0] == 0:        # a filtered or empty partition: a mean over nothing
                warnings.warn("evaluate received 0 samples: the loss and metrics are NaN.",
                              stacklevel=2)
                self._build_metrics(ys, self.call(self._pack(xs), training=False))
                nan = float("nan")
                return self._result_from_logs(self._logs(nan, lambda m: nan), return_dict)
            source = sources.ArraySource(xs, ys, sw, data.Batches(
                xs[0].shape[0], batch_size, steps, what="steps"))
        verbose = 1 if verbose == "auto" else verbose
        known = source.num_batches
        cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            to_list(callbacks), model=self,
            params={"epochs": 1, "verbose": verbose, "steps": known})
        bar = Progbar(known, verbose=verbose) if verbose and known else None
        logs = self._test_loop(source, cbs, bar)
        if not logs:
            raise ValueError("evaluate: `x` gave no batch.")
        return self._result_from_logs(logs, return_dict)

    def _result_from_logs(self, logs, return_dict):
        """The logs as a dict (sorted keys), or Keras's list: the loss, then the metrics in
        compile order (or the loss alone)."""
        if return_dict:
            return logs
        if not self._metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[name] for name in self._log_names()]
