"""``BackupAndRestore``: a fit that is interrupted (an exception, a killed process) and
started again with the same callback goes on from the last backed-up epoch, as Keras 3's.

The backup is Keras's pair of files in ``backup_dir``: ``latest.weights.h5`` (the Keras 3
weights layout, with the optimizer's variables in ``optimizer/vars``: iteration, learning
rate, slots) and ``training_metadata.json`` (``{"epoch": next epoch, "batch": ...}``). Both
are written atomically (``io.atomic``): a crash while saving leaves the previous backup.
No pickle: HDF5 arrays and JSON only.
"""
import json
import os
import shutil

from unrolled.callbacks import Callback
from unrolled.io.atomic import atomic_write


class BackupAndRestore(Callback):
    """Back up the model's weights, its optimizer's state and the epoch count.

    * ``on_train_begin``: if a backup exists, restore the weights and the optimizer's state
      and make ``fit`` start at the saved epoch (Keras's ``model._initial_epoch``); if it
      cannot be read and ``double_checkpoint`` kept a previous one (``*.bkp``), use that.
    * ``save_freq="epoch"``: back up at each epoch's end (the next epoch is recorded); an
      integer ``n``: every ``n`` training batches (the epoch in progress is recorded, so a
      resumed fit repeats that epoch from its start, as Keras does).
    * ``on_train_end`` (a fit that finished without an exception): remove ``backup_dir``
      if ``delete_checkpoint``.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (not isinstance(save_freq, int) or
                                     isinstance(save_freq, bool)):
            raise ValueError("Invalid value for argument `save_freq`. Received: "
                             f"save_freq={save_freq}. Expected either 'epoch' or an integer "
                             "value.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq, self.double_checkpoint = save_freq, double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._prev_weights_path = self._weights_path + ".bkp"
        self._prev_metadata_path = self._metadata_path + ".bkp"
        self._batches_since_saving = self._last_batch_seen = self._current_epoch = 0

    # ---- restore ----

    def on_train_begin(self, logs=None):
        try:
            self._restore()
        except (OSError, ValueError):
            if not os.path.exists(self._prev_weights_path):
                raise
            _copy(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_metadata_path):
                _copy(self._prev_metadata_path, self._metadata_path)
            elif os.path.exists(self._metadata_path):
                os.remove(self._metadata_path)
            self._restore()

    def _restore(self):
        from unrolled.io.h5_sandbox import open_h5
        from unrolled.saving.keras_format import _group_updates, load_weights_h5
        from unrolled.io.safety import read_file

        model = self.model
        if not getattr(model, "built", True):
            raise ValueError("To use the BackupAndRestore callback, your model must be built "
                             f"before you call `fit()`. Model {model} is unbuilt.")
        if os.path.exists(self._weights_path):
            path = self._weights_path
            data = read_file(path)
            optimizer = getattr(model, "optimizer", None)
            with open_h5(data, path) as f:
                updates = []
                if optimizer is not None and "optimizer" in f:
                    optimizer.build(model.trainable_weights)
                    updates = _group_updates(f, "optimizer", optimizer.variables, path,
                                             len(data))
                load_weights_h5(model, f, path, len(data))      # checked, then assigned
            for var, value in updates:
                var.assign(value)
        if os.path.exists(self._metadata_path):
            with open(self._metadata_path, encoding="utf-8") as f:
                metadata = json.loads(f.read())
            epoch = metadata.get("epoch") if isinstance(metadata, dict) else None
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                raise ValueError(f"{self._metadata_path!r}: expected {{\"epoch\": <int >= 0>"
                                 f", ...}}; found {metadata!r}.")
            model._initial_epoch = epoch

    # ---- back up ----

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # batches count from 0 in each epoch: a smaller index starts a new epoch
        added = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_since_saving += added
        self._last_batch_seen = batch
        if self._batches_since_saving >= self.save_freq:
            self._batches_since_saving = 0
            self._save()

    def _save(self):
        from unrolled.saving.keras_format import weights_h5_bytes

        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for src, dst in ((self._weights_path, self._prev_weights_path),
                             (self._metadata_path, self._prev_metadata_path)):
                if os.path.exists(src):
                    _copy(src, dst)
        data = weights_h5_bytes(self.model, with_optimizer=True)
        with atomic_write(self._weights_path) as f:
            f.write(data)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        with atomic_write(self._metadata_path, "w") as f:
            f.write(json.dumps(metadata))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


def _copy(src, dst):
    """Copy a file atomically (the destination is complete or untouched)."""
    with open(src, "rb") as f:
        data = f.read()
    with atomic_write(dst) as f:
        f.write(data)
