"""The order of a functional model's graph: the nodes to run, and ``Model.layers``.

``walk`` lists the nodes between the outputs and the inputs, each after the nodes it reads
from (the order ``Model`` runs them in); ``keras_layer_order`` gives the layers in Keras's
order (deepest first), which ``Model.layers`` and ``Model.weights`` follow and the files'
weight paths rely on.
"""


def walk(outputs):
    """Depth-first walk back from the outputs (in order), parents in call-argument order.

    Returns the nodes, each after all of its parents, and the walk's first-visit index of
    every layer (a shared layer keeps the index of its first node reached)."""
    order, state, first_visit = [], {}, {}
    for t in outputs:              # an explicit stack: models may be thousands of layers deep
        stack = [(t.node, None)]
        while stack:
            node, parents = stack[-1]
            if parents is None:                      # first reached
                if state.get(id(node)) == "done":
                    stack.pop()
                    continue
                if state.get(id(node)) == "active":
                    raise ValueError("The layer graph has a cycle.")
                state[id(node)] = "active"
                first_visit.setdefault(id(node.layer), len(first_visit))
                parents = iter(node.parents)
                stack[-1] = (node, parents)
            parent = next(parents, None)
            if parent is None:                       # every parent done: the node is
                state[id(node)] = "done"
                order.append(node)
                stack.pop()
            else:
                stack.append((parent, None))
    return order, first_visit


def keras_layer_order(nodes, first_visit, inputs):
    """``Model.layers`` in Keras's order: deepest first, ties by ``first_visit``.

    A node's depth is the longest path from it to an output (an output node has depth 0;
    a parent is one deeper than its deepest child). A layer's depth is that of its deepest
    node met so far, going from the outputs back (``nodes`` reversed), and a node of a shared
    layer is raised to its layer's depth before its parents are set. Inputs the outputs do
    not read come at depth 0, ahead of the rest. This is the order Keras's ``map_graph``
    gives ``operations``, and ``weights`` follows it."""
    in_graph = {id(n) for n in nodes}
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(nodes):
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        node_depth[id(node)] = layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        for parent in node.parents:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(node_depth.get(id(parent), 0), depth + 1)
    rank = dict(first_visit)
    for t in inputs:
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)], rank[id(t.node.layer)] = 0, -1
            layers[id(t.node.layer)] = t.node.layer
    keys = sorted(layer_depth, key=lambda k: (-layer_depth[k], rank[k]))
    return [layers[k] for k in keys]
