"""``model.summary()``: Keras's table, drawn with the same box characters and columns."""
import math


def readable_size(nbytes):
    """Bytes as Keras prints them: ``228.00 B``, ``1.28 MB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _wrap(text, width):
    """Word-wrap into lines of at most ``width``; a word too long is cut with '…'."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = word if len(word) <= width else word[: width - 1] + "…"
    lines.append(line)
    return lines


def shown(text):
    """``text`` with control characters (ANSI escapes, carriage returns) written as escapes
    (``\\x1b``): layer and model names may come from someone's file, and a name must not
    drive the terminal. (Keras's rich tables drop a few such characters but pass ESC.)"""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _table(header, rows, widths, align):
    top = "┏" + "┳".join("━" * w for w in widths) + "┓"
    under = "┡" + "╇".join("━" * w for w in widths) + "┩"
    sep = "├" + "┼".join("─" * w for w in widths) + "┤"
    bottom = "└" + "┴".join("─" * w for w in widths) + "┘"

    def render(cells, left, mid, right):
        wrapped = [_wrap(shown(c), w - 2) for c, w in zip(cells, widths)]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for lines, w, a in zip(wrapped, widths, align):
                text = lines[k] if k < len(lines) else ""
                text = text.rjust(w - 2) if a == "right" else text.ljust(w - 2)
                parts.append(f" {text} ")
            out.append(left + mid.join(parts) + right)
        return out

    lines = [top] + render(header, "┃", "┃", "┃") + [under]
    for i, row in enumerate(rows):
        if i:
            lines.append(sep)
        lines += render(row, "│", "│", "│")
    lines.append(bottom)
    return lines


def _format_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _weights_bytes(weights):
    return sum(w.value.size * w.value.dtype.itemsize for w in weights)


def summary_lines(model):
    nodes = model._nodes
    sequential_like = all(len(n.flat_inputs) <= 1 for n in nodes) and \
        len(model.inputs) == 1 and len({id(n.layer) for n in nodes}) == len(nodes)
    if sequential_like:
        widths, header, align = [33, 24, 15], ["Layer (type)", "Output Shape", "Param #"], ["left", "left", "right"]
    else:
        widths = [21, 19, 12, 19]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        align = ["left", "left", "right", "left"]
    rows = []
    for layer in model._summary_layers():
        node = layer._inbound_nodes[0] if layer._inbound_nodes else None
        shapes = [_format_shape(t.shape) for t in node.outputs] if node else ["?"]
        shape = shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"
        row = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
        if not sequential_like:
            conn = ", ".join(f"{t.node.layer.name}[0][{t.index}]" for t in node.flat_inputs) if node else ""
            row.append(conn or "-")
        rows.append(row)
    lines = [f'Model: "{shown(model.name)}"'] + _table(header, rows, widths, align)
    return lines + totals_lines(model)


def totals_lines(model):
    """The lines under the table: total, trainable, non-trainable (and optimizer) params."""
    lines = []
    trainable = model.trainable_weights
    non_trainable = model.non_trainable_weights
    t_count = sum(w.value.size for w in trainable)
    n_count = sum(w.value.size for w in non_trainable)
    opt = getattr(model, "optimizer", None)
    opt_vars = list(getattr(opt, "variables", []) or []) if opt is not None and getattr(opt, "built", False) else []
    o_count = sum(int(math.prod(v.shape)) for v in opt_vars)
    o_bytes = sum(v.value.nbytes for v in opt_vars)
    total_bytes = _weights_bytes(trainable) + _weights_bytes(non_trainable) + o_bytes
    lines.append(f" Total params: {t_count + n_count + o_count:,} ({readable_size(total_bytes)})")
    lines.append(f" Trainable params: {t_count:,} ({readable_size(_weights_bytes(trainable))})")
    lines.append(f" Non-trainable params: {n_count:,} ({readable_size(_weights_bytes(non_trainable))})")
    if opt_vars:
        lines.append(f" Optimizer params: {o_count:,} ({readable_size(o_bytes)})")
    return lines


def unbuilt_lines(model, layers):
    """Keras's table for a Sequential model not built yet: every shape ``?`` and every
    count ``0 (unbuilt)``."""
    rows = [[f"{layer.name} ({type(layer).__name__})", "?", "0 (unbuilt)"] for layer in layers]
    lines = [f'Model: "{shown(model.name)}"'] + _table(["Layer (type)", "Output Shape", "Param #"],
                                               rows, [33, 24, 15], ["left", "left", "right"])
    zero = readable_size(0)
    return lines + [f" Total params: 0 ({zero})", f" Trainable params: 0 ({zero})",
                    f" Non-trainable params: 0 ({zero})"]
