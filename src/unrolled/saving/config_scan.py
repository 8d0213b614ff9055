"""A model config's layer classes, checked before any layer is built.

A file of a layer class unrolled does not support is refused naming that class, before any
complaint about an option or initializer of another layer (``check_classes``, called by
``graph.model_from_config``).
"""
from . import custom_objects
from ..io.safety import UnsupportedModelError
from .config_reader import check_not_code
from .serialize import LAYERS, NESTED, supported_classes


def check_classes(config, where):
    """Refuse a model config holding a layer class unrolled cannot build, naming the class,
    before any layer is built: a file of an unsupported layer is refused for that layer,
    not for an option or initializer of another one. Nested models and the layers wrapped
    in ``Bidirectional``, ``TimeDistributed`` and ``RNN`` are searched too. In a functional
    config only the layers its outputs are computed from count: Keras 3 records the ops
    computing masks (``NotEqual``, ``Any``, ...) as entries fed to ``mask=``, which the
    graph skips. Lambda and custom classes are refused here too (``check_not_code``)."""
    from .nested_models import MODEL_CLASSES

    def visit(entry, where):
        if not isinstance(entry, dict):
            return
        check_not_code(entry, where)
        class_name, config = entry["class_name"], entry.get("config")
        if class_name in MODEL_CLASSES:
            cfg = config if isinstance(config, dict) else {}
            layers = config if isinstance(config, list) else cfg.get("layers")
            layers = [e for e in layers if isinstance(e, dict)] if isinstance(layers, list) else []
            if class_name != "Sequential":
                layers = _computed_from(layers, cfg.get("output_layers"))
            for layer in layers:
                visit(layer, where)
            return
        if class_name == "InputLayer" or custom_objects.lookup(entry) is not None:
            return
        if class_name not in LAYERS:
            name = entry.get("name") or (config.get("name") if isinstance(config, dict)
                                         else None)
            raise UnsupportedModelError(
                f"{where}: layer {name!r}: layer class {class_name!r} is not supported. "
                f"Supported classes: {', '.join(supported_classes())}.")
        for key in NESTED.get(class_name, ()):
            value = config.get(key) if isinstance(config, dict) else None
            for inner in value if isinstance(value, list) else [value]:
                visit(inner, where)

    visit(config, where)


def _node_refs(value, skip_mask):
    """Layer names a node refers to: Keras 3 ``__keras_tensor__`` histories (not those
    passed as ``mask=``), Keras 2 ``[name, node, tensor, kwargs]`` lists."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            config = value.get("config")
            history = config.get("keras_history") if isinstance(config, dict) else None
            ok = isinstance(history, list) and history and isinstance(history[0], str)
            return [history[0]] if ok else []
        return [r for k, v in value.items() if not (skip_mask and k == "mask")
                for r in _node_refs(v, skip_mask)]
    if isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
            return [value[0]]
        return [r for v in value for r in _node_refs(v, skip_mask)]
    return []


def _computed_from(entries, outputs):
    """The entries of a functional config its ``outputs`` are computed from."""
    by_name = {}
    for e in entries:
        config = e.get("config")
        name = e.get("name") or (config.get("name") if isinstance(config, dict) else None)
        if isinstance(name, str):
            by_name[name] = e
    seen, stack = set(), _node_refs(outputs or [], False)
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        stack += _node_refs(by_name[name].get("inbound_nodes") or [], True)
    return [e for name, e in by_name.items() if name in seen]
