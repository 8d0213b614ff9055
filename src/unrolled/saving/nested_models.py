"""Models used as layers inside other models, as Keras files hold them.

A ``Sequential`` or functional ``Model`` called on a tensor of another model is one layer of
it. In a config it is an entry whose ``class_name`` is ``Sequential``, ``Functional`` (Keras 3,
tf.keras 2.4+) or ``Model`` (Keras 2.0-2.3), with the whole model config inside, plus the
outer model's ``inbound_nodes``. In a weights file its variables sit under its own layers:
``layers/sequential/layers/lstm/cell/vars`` (Keras 3, tf.keras 2.14+: the class's snake name
``sequential`` / ``functional``, then ``layers/<snake class>[_k]`` counted inside the nested
model, whose ``layers`` hold its InputLayer when it is functional but not when Sequential).
A legacy ``.h5`` keeps all of a nested model's weights in one layer group, listed in
``weight_names`` in the order of its weights (trainable first).

Node indices. Keras 3 numbers a layer's nodes in the outer model from 0. Keras 2 (2.2's
``Network.get_config``: ``kept_nodes = 1`` for a nested network; tf.keras's
``_should_skip_first_node``: a functional model whose first layer is an InputLayer) counted
the nested model's own internal node as node 0, so the outer model refers to its first call
as node 1. A Keras 2 config (nodes written as lists) is read that way, unless one of its
references uses node 0 (a nested model that Keras 2 did not skip).
"""
MODEL_CLASSES = ("Sequential", "Functional", "Model")


def is_model(layer):
    """Whether ``layer`` is a Sequential or functional model (not a subclassed one)."""
    from ..models import Model, Sequential
    return type(layer) in (Model, Sequential)


def snake(model):
    """The name Keras's weights file gives the class of a nested model."""
    from ..models import Sequential
    return "sequential" if type(model) is Sequential else "functional"


def _refs_to(name, cfg):
    """Every node index by which a Keras 2 config refers to layer ``name``."""
    found = []

    def visit(value):
        if isinstance(value, list):
            if len(value) >= 3 and value[0] == name and isinstance(value[1], int) \
                    and isinstance(value[2], int):
                found.append(value[1])
            else:
                for v in value:
                    visit(v)

    for entry in cfg.get("layers", []) if isinstance(cfg.get("layers"), list) else []:
        if isinstance(entry, dict):
            visit(entry.get("inbound_nodes", []))
    visit(cfg.get("output_layers", []))
    return found


def node_list(entry, name, cfg):
    """The nested model's inbound nodes, indexed as the config refers to them: Keras 2
    configs (list nodes) put a placeholder (None) for its internal node 0."""
    nodes = list(entry.get("inbound_nodes", []) or [])
    keras2 = bool(nodes) and not isinstance(nodes[0], dict)
    if keras2 and 0 not in _refs_to(name, cfg):
        return [None] + nodes
    return nodes


def input_like(model):
    """A new Input of the nested model's input shape and dtype (a Sequential whose first
    layer is a model, and which has no InputLayer of its own)."""
    from ..layers import InputLayer
    if len(model.inputs) != 1:
        raise ValueError(f"The first layer of a Sequential model, '{model.name}', has "
                         f"{len(model.inputs)} inputs; a Sequential model takes one.")
    t = model.inputs[0]
    return InputLayer(batch_shape=tuple(t.shape), dtype=t.dtype).output
