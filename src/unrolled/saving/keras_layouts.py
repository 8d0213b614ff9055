"""The ``model.weights.h5`` layouts that Keras versions wrote, read as Keras 3.15's.

Every ``.keras`` writer stores a layer's variables in ``<inner path>/vars`` as datasets
``"0"``, ``"1"``, … (``saving_lib._save_state`` and ``H5IOStore.make``); the versions differ
in how the inner path is spelled:

* Keras 3.x and tf.keras >= 2.14 (tf_keras 2.21 included): ``layers/<snake class>[_k]``,
  ``k`` counting the earlier layers of the same class in ``model.layers``, then the
  attribute names inside a layer (``layers/lstm/cell``, ``layers/bidirectional/
  forward_layer/cell``). This is the layout ``graph.weight_groups`` names.
* tf.keras 2.12-2.13: ``_walk_trackable`` went through ``dir(model)`` in ascending order,
  and ``_layer_checkpoint_dependencies`` was not on the skip list, so the layers were saved
  from that dict: ``_layer_checkpoint_dependencies/<snake class>[_k]/...``. Its values hold
  every layer that has weights twice (``layer_with_weights-i`` and ``layer-j``), and the
  early ``_save_container_state`` counted a class on every entry, visited or not, so the
  second LSTM of a model is ``lstm_2`` (later writers skip visited entries: ``lstm_1``).
  Both numberings are tried; a file that fits both differently is refused as ambiguous.
  A nested model's layers come from its own dict, numbered inside it:
  ``_layer_checkpoint_dependencies/sequential/_layer_checkpoint_dependencies/lstm/cell``.
  (Keras 3's reader only renames every ``layers`` to that name: ``H5IOStore``'s "Fix for
  2.13 compatibility".)
* Windows: tf.keras 2.12-2.15 joined inner paths with ``tf.io.gfile.join`` and
  keras-core with ``os.path.join``, so on Windows ``h5py.create_group("layers\\\\lstm\\\\
  cell")`` made one root-level group whose *name* holds backslashes (HDF5 splits on ``/``
  only). Keras 3.0 added ``.replace("\\\\", "/")``. Here every ``\\`` in a group name is read
  as ``/``; a file holding the same path spelled both ways is refused. Zip member names are
  not affected: ``config.json``, ``metadata.json`` and ``model.weights.h5`` are written
  under fixed names (only ``assets/`` members, which recurrent models do not have, were
  joined with the OS separator).

``layout_view(f, groups, entries, path)`` returns an object whose ``get("<keras 3 path>")``
finds the group of the file's own layout; it is ``f`` itself for the Keras 3 layout.
"""
from ..io.h5_snapshot import H5Group
from ..io.safety import ModelFileError

KERAS213_ROOT = "_layer_checkpoint_dependencies"
MAX_GROUPS = 100_000          # an index of a Windows file's groups stops beyond this


class _Normalized:
    """A group tree indexed by its paths with every ``\\`` in a name read as ``/``."""

    def __init__(self, f, path):
        self._f, self._index = f, {}
        stack = [("", f)]
        while stack:
            prefix, group = stack.pop()
            for key in group.keys():
                child = group.get(key)
                if not isinstance(child, H5Group):
                    continue
                name = (prefix + "/" if prefix else "") + key.replace("\\", "/")
                name = "/".join(p for p in name.split("/") if p)
                if name in self._index and self._index[name] is not child:
                    raise ModelFileError(
                        f"{path!r}: the weights file holds the group {name!r} twice, spelled "
                        "with '/' and with '\\' (a file written on Windows, then edited?); "
                        "which one holds the weights is ambiguous.")
                self._index[name] = child
                if len(self._index) > MAX_GROUPS:
                    raise ModelFileError(f"{path!r}: the weights file holds more than "
                                         f"{MAX_GROUPS} groups; too many for a model.")
                stack.append((name, child))

    def get(self, name, default=None):
        name = name.strip("/")
        head, _, leaf = name.rpartition("/")
        group = self._index.get(name)
        if group is not None:
            return group
        parent = self._index.get(head) if head else self._f
        return default if parent is None else parent.get(leaf, default)

    def __contains__(self, name):
        return self.get(name) is not None

    def holds(self, name):
        """Whether a group ``name`` exists, also as the prefix of a backslashed name."""
        return self.get(name) is not None or any(p.startswith(name + "/") for p in self._index)


def _holds(view, name):
    if isinstance(view, _Normalized):
        return view.holds(name)
    return isinstance(view.get(name), H5Group)


class _Renamed:
    """Keras 3 layer paths (``layers/lstm_1/...``) read at other names; the longest renamed
    prefix of a path wins (a nested model's layers are renamed with it)."""

    def __init__(self, f, renames):
        self._f = f
        self._renames = sorted(renames.items(), key=lambda kv: -len(kv[0]))

    def get(self, name, default=None):
        for old, new in self._renames:
            if name == old or name.startswith(old + "/"):
                return self._f.get(new + name[len(old):], default)
        return self._f.get(name, default)

    def __contains__(self, name):
        return self.get(name) is not None


def _has_backslash(f):
    return any("\\" in key for key in f.keys())


def _keras213_names(entries, twice):
    """``_layer_checkpoint_dependencies`` path of each layer's Keras 3 path. ``entries``:
    ``(container, path, snake, weighted)`` of every layer, nested models' layers included
    (``container``: ``"layers"``, or ``"<nested model's path>/layers"``). A class is counted
    once per layer, or (``twice``) twice for a layer that has weights: the dict holds it as
    ``layer_with_weights-i`` and ``layer-j``, and the first writers counted visited entries."""
    used, out = {}, {}
    for container, path, snake, weighted in entries:
        owner = container[:-len("layers")].rstrip("/")
        parent = f"{out[owner]}/{KERAS213_ROOT}" if owner else KERAS213_ROOT
        counts = used.setdefault(container, {})
        for k in range(2 if (twice and weighted) else 1):
            if snake in counts:
                counts[snake] += 1
                name = f"{snake}_{counts[snake]}"
            else:
                counts[snake] = 0
                name = snake
            if k == 0:
                out[path] = f"{parent}/{name}"
    return out


def _fits(f, renames, groups):
    view = _Renamed(f, renames)
    return all(isinstance(view.get(f"{p}/vars"), H5Group) and
               len(view.get(f"{p}/vars").keys()) == len(v) for p, v in groups if v)


def layout_view(f, groups, entries, path):
    """``f`` seen in the Keras 3 layout. ``groups`` are ``graph.weight_groups`` of the model's
    layers, ``entries`` ``(container, path, snake, weighted)`` of each layer (``layer_entries``)."""
    view = _Normalized(f, path) if _has_backslash(f) else f
    if not _holds(view, KERAS213_ROOT):
        return view
    if _holds(view, "layers"):
        raise ModelFileError(
            f"{path!r}: the weights file holds both a 'layers' group (Keras 3, tf.keras >= "
            f"2.14) and a '{KERAS213_ROOT}' group (tf.keras 2.12-2.13); which one holds the "
            "model's weights is ambiguous.")
    fitting = []
    for twice in (True, False):
        renames = _keras213_names(entries, twice)
        if _fits(view, renames, groups) and renames not in fitting:
            fitting.append(renames)
    if len(fitting) > 1:
        raise ModelFileError(
            f"{path!r}: the tf.keras 2.13 weights layout fits the model with two numberings "
            f"of its layers ({sorted(fitting[0].values())} and {sorted(fitting[1].values())}); "
            "which layer holds which weights is ambiguous.")
    renames = fitting[0] if fitting else _keras213_names(entries, False)
    return _Renamed(view, renames)


def layer_entries(layers, container="layers"):
    """``(container, Keras 3 path, snake class name, has weights)`` of each layer, and of
    the layers of nested models after their model, as ``graph.weight_groups`` names them."""
    from . import custom_objects, nested_models
    from .serialize import snake_name
    used, out = {}, []
    for layer in layers:
        if custom_objects.is_custom(layer):
            snake = custom_objects.snake(type(layer).__name__)
        elif nested_models.is_model(layer):
            snake = nested_models.snake(layer)
        else:
            snake = snake_name(type(layer).__name__)
        k = used[snake] = used.get(snake, -1) + 1
        path = f"{container}/{snake}" + (f"_{k}" if k else "")
        out.append((container, path, snake, bool(layer.weights)))
        if nested_models.is_model(layer):
            out += layer_entries(layer.layers, f"{path}/layers")
    return out


def view_for(model, layers, f, path):
    """``layout_view`` for ``model`` (its ``layers`` in the file's order, or all)."""
    from .graph import weight_groups
    layers = list(layers if layers is not None else model.layers)
    return layout_view(f, weight_groups(model, layers), layer_entries(layers), path)
