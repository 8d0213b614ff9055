"""Whole models as Keras configs, and where each weight lives in a Keras weights file.

* ``model_config(model)`` writes a ``Functional`` or ``Sequential`` config as Keras 3 does:
  every layer with its ``inbound_nodes`` (``keras_history = [layer, node, tensor]``).
* ``model_from_config(config)`` rebuilds the graph from a Keras 3 or tf.keras 2 config.
  Masks travel implicitly in unrolled, so the mask-computing ops Keras 3 records
  (``NotEqual``, ``Any``, ``LogicalOr`` … fed to a layer's ``mask=``) are skipped.
* ``weight_groups(model, layers)`` lists, for Keras 3's ``model.weights.h5`` layout, the
  group of every layer's (or cell's) variables, e.g. ``layers/bidirectional/forward_layer/
  cell/vars``. Layers are addressed by class (``dense``, ``dense_1``), not by name, in
  the order of ``model.layers`` (Keras's order; see ``models/functional.py``).
"""
from ..layers import InputLayer
from ..layers.weights import WeightsFromFile
from ..models import Model, Sequential
from ..utils import to_list
from . import custom_objects, nested_models
from .config_scan import check_classes
from .config_reader import check_not_code, input_layer_from_config, layer_from_config
from .config_writer import dtype_policy, layer_config
from .serialize import LAYERS, snake_name
from ..io.safety import ModelFileError, UnsupportedModelError

_TENSOR = "__keras_tensor__"


# --- weight paths ---------------------------------------------------------------------------
def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _groups(obj, path):
    """[(group path, variables)] for one layer or cell, following Keras's attribute names."""
    class_name = type(obj).__name__
    if nested_models.is_model(obj):                 # a model used as a layer: its own layers
        return [(path, [])] + weight_groups(obj, None, f"{path}/layers")
    if class_name == "Bidirectional":
        return [(path, [])] + _groups(obj.forward_layer, f"{path}/forward_layer") + \
            _groups(obj.backward_layer, f"{path}/backward_layer")
    if class_name == "TimeDistributed":
        return [(path, [])] + _groups(obj.layer, f"{path}/layer")
    if class_name == "StackedRNNCells":
        used, out = {}, [(path, [])]
        for cell in obj.cells:
            out += _groups(cell, f"{path}/cells/{_unique(snake_name(type(cell).__name__), used)}")
        return out
    if class_name == "MultiHeadAttention":        # its EinsumDense sublayers, Softmax, Dropout
        return [(path, []), (f"{path}/_dropout_layer", []), (f"{path}/_softmax", [])] + [
            (f"{path}/{'output' if sub == 'attention_output' else sub}_dense",
             [w for w in obj._dense[sub] if w is not None]) for sub in obj._SUBLAYERS]
    if hasattr(obj, "cell"):                                 # SimpleRNN, LSTM, GRU, RNN(cell)
        return [(path, [])] + _groups(obj.cell, f"{path}/cell")
    return [(path, list(obj.weights))]


def weight_groups(model, layers=None, prefix="layers"):
    """Every ``(group path, [Variable, ...])`` of ``model`` in Keras 3's weights-file layout
    (a nested model's layers under ``<its path>/layers``)."""
    used, out = {}, []
    for layer in layers if layers is not None else model.layers:
        class_name = type(layer).__name__
        if custom_objects.is_custom(layer):                  # a layer written the Keras way
            snake = custom_objects.snake(class_name)
        elif nested_models.is_model(layer):
            snake = nested_models.snake(layer)
        elif class_name not in LAYERS:
            raise UnsupportedModelError(f"Layer {layer.name} ({class_name}) has no Keras weight "
                                        "layout.")
        else:
            snake = snake_name(class_name)
        out += _groups(layer, f"{prefix}/{_unique(snake, used)}")
    return out


# --- writing configs ------------------------------------------------------------------------
def _model_nodes(model):
    return {id(n) for n in model._nodes} | {id(t.node) for t in model.inputs}


def _node_index(layer, node, own):
    return [n for n in layer._inbound_nodes if id(n) in own].index(node)


def _tensor(t, own):
    return {"class_name": _TENSOR, "config": {
        "shape": list(t.shape), "dtype": t.dtype,
        "keras_history": [t.node.layer.name, _node_index(t.node.layer, t.node, own), t.index]}}


def _history(t, own):
    return [t.node.layer.name, _node_index(t.node.layer, t.node, own), t.index]


def model_config(model):
    """The Keras 3 config (``{"module", "class_name", "config", ...}``) of a model."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built: call it on data or give it an "
                         "Input first, so that its shapes are known.")
    if isinstance(model, Sequential):
        layers = [layer_config(model._input.node.layer)] + [_layer_entry(l) for l in model.layers]
        return {"module": "keras", "class_name": "Sequential", "registered_name": None,
                "config": {"name": model.name, "trainable": True,
                           "dtype": dtype_policy("float32"), "layers": layers}}
    own = _model_nodes(model)
    entries = []
    for layer in model.layers:
        entry = _layer_entry(layer)
        entry["name"] = layer.name
        nodes = [n for n in layer._inbound_nodes if id(n) in own and not isinstance(layer, InputLayer)]
        entry["inbound_nodes"] = []
        for node in nodes:
            ins = [_tensor(t, own) for t in to_list(node.inputs)]
            kwargs = {"initial_state": [_tensor(t, own) for t in node.states]} if node.states else {}
            kwargs.update({k: node.kwargs[k] for k in layer.call_options if k in node.kwargs})
            if hasattr(layer, "keras_node_args"):        # MultiHeadAttention(query, value, key=)
                args, named = layer.keras_node_args(node.inputs, ins)
                kwargs.update(named)
            else:
                args = [ins] if isinstance(node.inputs, list) else ins
            entry["inbound_nodes"].append({"args": args, "kwargs": kwargs})
        entries.append(entry)
    ins = [_history(t, own) for t in model.inputs]
    outs = [_history(t, own) for t in model.outputs]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "registered_name": "Functional",
            "config": {"name": model.name, "trainable": True, "layers": entries,
                       "input_layers": ins if model._multi_input else ins[0],
                       "output_layers": outs if model._multi_output else outs[0]}}


def _layer_entry(layer):
    """A layer's config entry; a nested model's is its own model config."""
    return model_config(layer) if nested_models.is_model(layer) else layer_config(layer)


# --- reading configs ------------------------------------------------------------------------
def _refs(value):
    """The keras_history triples in a node argument (a tensor, a list of them, or a constant)."""
    if isinstance(value, dict) and value.get("class_name") == _TENSOR:
        return [tuple(value["config"]["keras_history"])]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v)]
    return []


def _call_options(layer, kwargs):
    """The node's call arguments the layer's forward takes (``Layer.call_options``)."""
    return {k: kwargs[k] for k in layer.call_options if isinstance(kwargs, dict) and k in kwargs}


def _parse_node(node, layer):
    """``(main input refs, is_list, state refs, call)`` from a Keras 3 or tf.keras 2 node;
    ``call``: the call arguments (``Layer.call_options``) and, for a layer called on named
    tensors (``MultiHeadAttention``), ``"names"``: the argument name of each main ref."""
    if isinstance(node, dict):                               # Keras 3
        args, kwargs = node.get("args", []), node.get("kwargs", {}) or {}
        call = _call_options(layer, kwargs)
        if hasattr(layer, "keras_node_args"):        # query, value, key=, by position or name
            names, refs = layer.tensor_arguments(args, kwargs, _refs)
            if names[:2] != ["query", "value"]:
                raise ModelFileError(f"A node of layer {layer.name!r} lacks its query or value.")
            return refs, True, [], {**call, "names": names}
        if not args:
            raise ModelFileError(f"A node of layer {layer.name!r} has no inputs.")
        main = args[0]
        is_list = isinstance(main, list)
        states = _refs(kwargs.get("initial_state"))
        return _refs(main), is_list, states, call
    refs = [tuple(r[:3]) for r in node]                     # tf.keras 2: [[name, node, tensor, kw]]
    call = _call_options(layer, node[0][3] if node and len(node[0]) > 3 else {})
    if hasattr(layer, "keras_node_args"):
        raise UnsupportedModelError(f"Layer {layer.name!r} ({type(layer).__name__}) in a tf.keras "
                                    "2 config is not supported; save the model with Keras 3.")
    if hasattr(layer, "cell") or type(layer).__name__ == "Bidirectional":
        return refs[:1], False, refs[1:], call               # extra inbound tensors: states
    return refs, len(refs) > 1, [], call


def _triples(value):
    if value and isinstance(value[0], str):
        return [tuple(value)], False
    return [tuple(v) for v in value], True


def model_from_config(config, where="model", hard_sigmoid="hard_sigmoid", weights_bytes=None):
    """An unrolled ``Model`` or ``Sequential`` from a Keras model config; ``hard_sigmoid``:
    the activation the config's ``"hard_sigmoid"`` means (``serialize.hard_sigmoid_for``).
    ``weights_bytes``: the model's weights will come from a file that can hold at most
    that many bytes of them; the model is then built without running initializers, and a
    config declaring more is refused before anything is allocated (``WeightsFromFile``)."""
    check_classes(config, where)                    # an unsupported class is named first
    if weights_bytes is None:
        return _model_from_config(config, where, hard_sigmoid)
    with WeightsFromFile(weights_bytes, ModelFileError, where):
        return _model_from_config(config, where, hard_sigmoid)


def _model_from_config(config, where, hard_sigmoid):
    check_not_code(config, where)
    kind, cfg = config["class_name"], config.get("config") or {}
    if kind == "Sequential":
        if isinstance(cfg, list):        # Keras <= 2.2.2: "config" is the list of layers
            cfg = {"layers": cfg}
        return _sequential(cfg, where, hard_sigmoid)
    if kind not in ("Functional", "Model"):
        raise UnsupportedModelError(f"{where}: model class {kind!r} is not supported; supported: "
                                    "Sequential, Functional.")
    _check_unique_names(cfg.get("layers", []), where)
    tensors, layers, pending, unknown = {}, {}, [], {}
    for entry in cfg.get("layers", []):
        check_not_code(entry, where)
        name = entry.get("name") or entry.get("config", {}).get("name")
        if entry["class_name"] == "InputLayer":
            layer = input_layer_from_config(entry, f"{where} layer {name!r}")
            tensors[(name, 0, 0)] = layer.output
        elif entry["class_name"] in nested_models.MODEL_CLASSES:   # a model used as a layer
            layer = _model_from_config(entry, f"{where} layer {name!r}", hard_sigmoid)
            pending.append((layer, nested_models.node_list(entry, name, cfg)))
        elif entry["class_name"] in LAYERS or custom_objects.lookup(entry) is not None:
            layer = layer_from_config(entry, f"{where} layer", hard_sigmoid)
            pending.append((layer, list(entry.get("inbound_nodes", []))))
        else:
            unknown[name] = entry["class_name"]              # a mask op, or unsupported
            continue
        layers[name] = layer
    ins, multi_in = _triples(cfg.get("input_layers", []))
    outs, multi_out = _triples(cfg.get("output_layers", []))
    by_name = {layer.name: (layer, nodes) for layer, nodes in pending}
    needed, stack = set(), list(outs)               # the nodes the outputs need (masks aside)
    while stack:
        name, k = stack.pop()[:2]
        if (name, k) in needed or (name, k, 0) in tensors:
            continue
        if name in unknown:
            raise UnsupportedModelError(
                f"{where}: the model uses {name!r}, a {unknown[name]!r}, which is not "
                f"supported. Supported classes: {', '.join(sorted(LAYERS))}.")
        if name not in by_name or k >= len(by_name[name][1]) or by_name[name][1][k] is None:
            raise ModelFileError(f"{where}: the config refers to node {k} of {name!r}, which "
                                 "it does not define.")
        needed.add((name, k))
        main, _, states, _ = _parse_node(by_name[name][1][k], by_name[name][0])
        stack += main + states
    progress = True
    while progress:
        progress = False
        for layer, nodes in pending:
            for k, node in enumerate(nodes):
                if (layer.name, k) not in needed or (layer.name, k, 0) in tensors:
                    continue
                main, is_list, states, call = _parse_node(node, layer)
                if not all(r in tensors for r in main + states):
                    continue
                ins_k = [tensors[r] for r in main]
                kwargs = {"initial_state": [tensors[r] for r in states]} if states else {}
                names = call.pop("names", None)
                if names is not None:                # named tensors: query=, value=, key=, ...
                    out = layer(**dict(zip(names, ins_k)), **call)
                else:
                    out = layer(ins_k if is_list else ins_k[0], **kwargs, **call)
                for i, t in enumerate(to_list(out)):
                    tensors[(layer.name, k, i)] = t
                progress = True
    missing = [r for r in ins + outs if r not in tensors]
    if missing:
        raise ModelFileError(f"{where}: the graph cannot be rebuilt; tensors {missing} are never "
                             "computed from the inputs.")
    inputs, outputs = [tensors[r] for r in ins], [tensors[r] for r in outs]
    model = Model(inputs if multi_in else inputs[0], outputs if multi_out else outputs[0],
                  name=cfg.get("name"))
    return model


def _check_unique_names(entries, where):
    """Files refer to layers by name (graph nodes, weight groups): two layers of one name make
    a file ambiguous, and Keras refuses to build such a model."""
    seen = set()
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        config = entry.get("config")
        name = entry.get("name") or (config.get("name") if isinstance(config, dict) else None)
        if not isinstance(name, str):
            continue                      # refused, if at all, where the layer is read
        if name in seen:
            raise ModelFileError(f"{where}: two layers are named {name[:200]!r}; a file "
                                 "matches nodes and weights by layer name, so it is ambiguous.")
        seen.add(name)


def _sequential(cfg, where, hard_sigmoid):
    entries = list(cfg.get("layers", []))
    _check_unique_names(entries, where)
    input_tensor = None
    if entries and entries[0].get("class_name") == "InputLayer":
        input_tensor = input_layer_from_config(entries.pop(0), f"{where} InputLayer").output
    layers = []
    for i, entry in enumerate(entries):
        check_not_code(entry, where)
        entry = {**entry, "config": dict(entry.get("config") or {})}
        shape = entry["config"].pop("batch_input_shape", None) or entry["config"].pop("batch_shape", None)
        if i == 0 and shape is not None and input_tensor is None:
            dtype = entry["config"].get("dtype") if entry["class_name"] != "Embedding" else "int32"
            dtype = dtype if isinstance(dtype, str) else "float32"
            input_tensor = InputLayer(batch_shape=tuple(shape), dtype=dtype).output
        if entry.get("class_name") in nested_models.MODEL_CLASSES:
            layers.append(_model_from_config(entry, f"{where} layer", hard_sigmoid))
            if i == 0 and input_tensor is None:              # the inner model's input
                input_tensor = nested_models.input_like(layers[-1])
            continue
        layers.append(layer_from_config(entry, f"{where} layer", hard_sigmoid))
    if input_tensor is None and cfg.get("build_input_shape"):
        input_tensor = InputLayer(batch_shape=tuple(cfg["build_input_shape"])).output
    if input_tensor is None:
        raise ModelFileError(f"{where}: the Sequential model was saved before it was built (no "
                             "input shape); unrolled needs the shape to load its weights.")
    return Sequential([input_tensor] + layers, name=cfg.get("name"))
