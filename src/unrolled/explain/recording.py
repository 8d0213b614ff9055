"""Listening to a model while it runs: record a method's calls without changing it.

The explainers read values that the layers compute but do not return: the states each
``cell.step`` produced, the gradients each ``cell.step_backward`` received, the output of
each layer in a graph. ``record_calls`` wraps the method on one instance for the length
of a ``with`` block, passes every call through unchanged, and keeps ``(args, result)``.
"""
from contextlib import contextmanager


@contextmanager
def record_calls(obj, method, log, copy_first=False):
    """While active, every call ``obj.method(*args)`` is appended to ``log`` as ``(args, result)``.

    The method itself runs unchanged; the recorder only listens. It is installed on the
    instance and removed afterwards, so the class and other instances are untouched. With
    ``copy_first`` the first argument is logged as it was before the call (a cell's ``step``
    reuses its ``xp_t`` buffer in place for the pre-activations).
    """
    original = getattr(obj, method)
    had_own = method in vars(obj)

    def recorder(*args, **kwargs):
        logged = (args[0].copy(),) + args[1:] if copy_first and args else args
        result = original(*args, **kwargs)
        log.append((logged, result))
        return result

    setattr(obj, method, recorder)
    try:
        yield log
    finally:
        if had_own:
            setattr(obj, method, original)
        else:
            delattr(obj, method)


def is_recurrent(layer):
    return hasattr(layer, "cell") and hasattr(layer.cell, "step")


def cells_of(cell):
    """The cells that run one step each: the cell itself, or a stack's cells."""
    return list(cell.cells) if hasattr(cell, "cells") else [cell]


def recurrent_layers(layer):
    """The recurrent layers inside ``layer`` (itself, a Bidirectional's two, a model's all)."""
    if is_recurrent(layer):
        return [layer]
    if hasattr(layer, "forward_layer"):
        return [layer.forward_layer, layer.backward_layer]
    if hasattr(layer, "_nodes"):
        return [r for node in layer._nodes for r in recurrent_layers(node.layer)]
    if hasattr(layer, "layer"):
        return recurrent_layers(layer.layer)
    return []


@contextmanager
def recording_steps(model_or_layer, method="step"):
    """Record ``cell.<method>`` calls of every recurrent cell inside; yields ``{id(cell): log}``."""
    logs, stack = {}, []
    try:
        for rnn in recurrent_layers(model_or_layer):
            for cell in cells_of(rnn.cell):
                if id(cell) not in logs:
                    logs[id(cell)] = []
                    ctx = record_calls(cell, method, logs[id(cell)], method == "step")
                    ctx.__enter__()
                    stack.append(ctx)
        yield logs
    finally:
        for ctx in reversed(stack):
            ctx.__exit__(None, None, None)


@contextmanager
def recording_forwards(model, calls):
    """Record ``layer.forward`` of every layer of the model's graph into one list, in call order."""
    stack = []
    try:
        for layer in {id(n.layer): n.layer for n in model._nodes}.values():
            ctx = record_calls(layer, "forward", calls)
            ctx.__enter__()
            stack.append(ctx)
        yield calls
    finally:
        for ctx in reversed(stack):
            ctx.__exit__(None, None, None)
