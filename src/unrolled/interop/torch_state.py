"""PyTorch ``state_dict`` → unrolled: one module, or a whole model (``from_torch_state``).

A state dict holds tensors, not a ``forward``. A *whole-model* state is read as the model
people write most often::

    class Net(nn.Module):                      # state keys
        def __init__(self):
            self.embedding = nn.Embedding(V, D)   # embedding.weight        (optional)
            self.lstm = nn.LSTM(D, H, num_layers=L, bidirectional=B, batch_first=True)
            self.fc = nn.Linear(H * (1 + B), K)   # fc.weight, fc.bias     (optional)

        def forward(self, x):
            out, _ = self.lstm(self.embedding(x))
            return self.fc(out[:, -1])            # the head on the LAST step

and becomes ``Sequential([Input, Embedding, <recurrent layers>, Dense])``. Submodules are
told apart by their keys (``weight_ih_l0``: recurrent, kind from the shapes) and, for the
``{weight[, bias]}`` ones, by name: ``embedding``/``embed``/``emb``/``embeddings`` is an
Embedding, ``fc``/``linear``/``head``/``out`` a Linear head. Anything else — an unknown
name, two heads, two recurrent modules, a tensor outside the modules, extra keys in a
module — is refused, naming the keys; ``kind={"name": "Linear", ...}`` names the kind of
each submodule when the names do not tell.

``head_on`` says what the head reads (a state dict cannot say it):

- ``"last"`` (default): ``fc(out[:, -1])``. One direction: the last layer returns its last
  output. Bidirectional: ``out[:, -1]`` is the forward direction's last output beside the
  backward direction's output at the last position — the backward layer's FIRST step, not
  its final state — so the last layer returns its sequence and a ``last_step`` layer (a
  linear ``SimpleRNN`` with identity kernel and zero recurrent kernel, which returns
  ``x[:, -1]`` exactly) takes the last position.
- ``"final"``: ``fc(h_n[-1])``, or ``fc(torch.cat([h_n[-2], h_n[-1]], 1))`` when
  bidirectional — Keras's ``Bidirectional(return_sequences=False)``.
- ``"sequence"``: ``fc(out)``, the head on every step.

Another forward (pooling, an activation after the head, dropout in between changes
nothing at inference) is built by hand: ``from_torch_state`` of each submodule's part of the
state, put in a ``Sequential`` or functional ``Model``.
"""
import numpy as np

from ..layers import Dense, Embedding, Input, SimpleRNN
from ..models import Sequential
from .torch import _copy, recurrent_from_arrays, recurrent_spec

EMBEDDING_NAMES = ("embedding", "embed", "emb", "embeddings")
HEAD_NAMES = ("fc", "linear", "head", "out")
RECURRENT = ("RNN", "LSTM", "GRU")
KINDS = RECURRENT + ("Linear", "Embedding")
HEAD_ON = ("last", "final", "sequence")


def strip_prefix(state):
    """The state without the leading dotted names all keys share (``"model."``,
    DataParallel's ``"module."``, one module's ``"rnn."``), each key keeping its last name."""
    state = dict(state)
    while state:
        firsts = {k.split(".", 1)[0] if "." in k else None for k in state}
        if len(firsts) != 1 or None in firsts:
            break
        cut = len(firsts.pop()) + 1
        state = {k[cut:]: v for k, v in state.items()}
    return state


def _groups(state):
    """``{submodule: {key: array}}`` of a whole-model state (keys ``name.key``)."""
    loose = [k for k in state if "." not in k]
    if loose:
        raise ValueError(f"These tensors belong to no submodule: {loose} (beside "
                         f"{sorted({k.split('.', 1)[0] for k in state if '.' in k})}); a state "
                         "dict is read as an embedding, one recurrent module and a head. Remove "
                         "them, or convert each submodule's part of the state by itself.")
    groups = {}
    for key, value in state.items():
        name, rest = key.split(".", 1)
        groups.setdefault(name, {})[rest] = value
    return groups


def _linear_or_embedding(name, sub, kind):
    keys = set(sub)
    allowed = {"weight"} if kind == "Embedding" else {"weight", "bias"}
    if "weight" not in keys or not keys <= allowed:
        raise ValueError(f"Submodule {name!r} (read as {kind}) has keys {sorted(keys)}; an "
                         f"nn.{kind} has {sorted(allowed)}.")
    if np.ndim(sub["weight"]) != 2 or ("bias" in sub and np.shape(sub["bias"]) !=
                                       np.shape(sub["weight"])[:1]):
        raise ValueError(f"Submodule {name!r} (read as {kind}): weight {np.shape(sub['weight'])}"
                         f"{'' if 'bias' not in sub else ', bias ' + str(np.shape(sub['bias']))}"
                         f" are not the shapes of an nn.{kind}.")


def _check_recurrent(name, sub, kind):
    spec = recurrent_spec(sub, kind)
    rkind, _, _, layers, bidi, bias = spec
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    expected = {f"{n}_l{k}{d}" for k in range(layers) for d in ("", "_reverse")[:1 + bidi]
                for n in names}
    extra = sorted(set(sub) - expected)
    if extra:
        where = f"submodule {name!r}" if name else "the state"
        raise ValueError(f"The {rkind} of {where} ({layers} layer(s), "
                         f"{'bi' if bidi else 'uni'}directional) does not have these keys: "
                         f"{extra}.")
    return spec


def _guess(name, sub):
    if "weight_ih_l0" in sub:
        return recurrent_spec(sub)[0]
    if name.lower() in EMBEDDING_NAMES and set(sub) == {"weight"}:
        return "Embedding"
    if name.lower() in HEAD_NAMES and set(sub) <= {"weight", "bias"} and "weight" in sub:
        return "Linear"
    return None


def _kind_hint(groups, kinds):
    shown = ", ".join(f"{n!r}: {kinds.get(n) or '...'!r}" for n in groups)
    return (f"pass kind={{{shown}}}, naming each submodule's kind ({', '.join(map(repr, KINDS))})")


def plan(state, kind=None):
    """The submodules of a state as ``[(name, kind, substate)]`` in forward order (embedding,
    recurrent, head), every key accounted for; a one-module state gives one entry named ``""``.
    Raises ``ValueError`` naming the keys when the state is not such a model."""
    state = strip_prefix(state)
    if not any("." in k for k in state):
        return [("", _one_kind(state, kind), state)]
    groups = _groups(state)
    if kind is not None and not isinstance(kind, dict):
        guessed = {n: _guess(n, sub) for n, sub in groups.items()}
        raise ValueError(f"This state holds several submodules ({', '.join(map(repr, groups))}); "
                         f"kind={kind!r} names one module's kind: {_kind_hint(groups, guessed)}.")
    kinds = dict(kind or {})
    wrong = {n: k for n, k in kinds.items() if n not in groups or k not in KINDS}
    if wrong:
        raise ValueError(f"kind={kinds!r}: {wrong!r} do not name submodules of this state "
                         f"({', '.join(map(repr, groups))}) with one of {', '.join(KINDS)}.")
    for name, sub in groups.items():
        kinds[name] = kinds.get(name) or _guess(name, sub)
    unknown = [n for n, k in kinds.items() if k is None]
    if unknown:
        raise ValueError("Cannot tell which module these tensors belong to: " + "; ".join(
            f"{n!r} {sorted(groups[n])}" for n in unknown) + ". Names read: embedding "
            f"{'/'.join(EMBEDDING_NAMES)}, head {'/'.join(HEAD_NAMES)}, any name for "
            f"recurrent weights (weight_ih_l0...); {_kind_hint(groups, kinds)}.")
    roles = {"Embedding": [], "recurrent": [], "Linear": []}
    for name, k in kinds.items():
        roles["recurrent" if k in RECURRENT else k].append(name)
    for role, names in roles.items():
        if len(names) > 1 or (role == "recurrent" and not names):
            what = {"Embedding": "embeddings", "recurrent": "recurrent modules",
                    "Linear": "heads"}[role]
            raise ValueError(
                f"This state holds {len(names)} {what} ({', '.join(map(repr, names))}) in "
                f"{sorted(state)[:12]}{' ...' if len(state) > 12 else ''}; from_torch_state reads "
                "an optional embedding, ONE recurrent module (any num_layers, bidirectional) "
                "and an optional Linear head, and does not guess how others are connected. "
                "Convert each submodule's part of the state with from_torch_state and put the "
                "layers together in a Sequential or Model.")
    out = []
    for role in ("Embedding", "recurrent", "Linear"):
        for name in roles[role]:
            out.append((name, kinds[name], groups[name]))
    return _check_chain(out)


def _one_kind(state, kind):
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(KINDS)}.")
    recurrent = "weight_ih_l0" in state or any(k.startswith("weight_hr") for k in state)
    if recurrent != (kind in RECURRENT) and kind is not None:
        raise ValueError(f"kind={kind!r} does not fit this state (keys {sorted(state)[:8]}).")
    if recurrent:
        return _check_recurrent("", state, kind)[0]
    kind = kind or ("Linear" if set(state) == {"weight", "bias"} else None)
    if kind is None and set(state) == {"weight"}:
        raise ValueError("Cannot tell which module this state belongs to (keys ['weight']): "
                         "pass kind='Linear' (no bias) or kind='Embedding'.")
    if kind is None:
        raise ValueError(f"Cannot tell which module this state belongs to (keys "
                         f"{sorted(state)[:8]}): they are not the keys of an nn.RNN, LSTM, GRU "
                         "(weight_ih_l0, ...), Linear or Embedding, nor of a model of them.")
    _linear_or_embedding("", state, kind)
    return kind


def _check_chain(entries):
    """Each submodule's input size is the size the one before gives."""
    for (a, ka, sa), (b, kb, sb) in zip(entries, entries[1:]):
        if ka == "Embedding":
            given = np.shape(sa["weight"])[1]
        else:
            spec = _check_recurrent(a, sa, ka)
            given = spec[2] * (2 if spec[4] else 1)
        if kb in RECURRENT:
            spec = _check_recurrent(b, sb, kb)
            wanted, what = spec[1], "input_size"
        else:
            _linear_or_embedding(b, sb, kb)
            wanted, what = np.shape(sb["weight"])[1], "in_features"
        if given != wanted:
            raise ValueError(f"{a!r} ({ka}) gives {given} features but {b!r} ({kb}) has "
                             f"{what} {wanted}: they are not one after the other.")
    for name, k, sub in entries:
        if k == "Embedding":
            _linear_or_embedding(name, sub, k)
    return entries


def _last_step(features):
    """A layer returning ``x[:, -1]`` exactly: ``h_t = x_t I + h_{t-1} 0``, linear."""
    layer = SimpleRNN(features, activation="linear", use_bias=False, name="last_step",
                      trainable=False)           # a selection, not something to train
    layer.build((None, None, features))
    layer.set_weights([np.eye(features, dtype=np.float32),
                       np.zeros((features, features), np.float32)])
    return layer


def _dense(sub, where):
    w = sub["weight"]
    layer = Dense(w.shape[0], use_bias="bias" in sub)
    layer.build((None, w.shape[1]))
    values = [w.T] + ([sub["bias"]] if "bias" in sub else [])
    layer.set_weights([_copy(a, b, where) for a, b in zip(layer.get_weights(), values)])
    return layer


def _embedding(sub, where):
    layer = Embedding(*np.shape(sub["weight"]))
    layer.build(None)
    layer.set_weights([_copy(layer.embeddings.value, sub["weight"], where)])
    return layer


def from_torch_state(state, kind=None, nonlinearity="tanh", head_on=None):
    """unrolled layer(s) for a PyTorch state dict (e.g. from ``load_torch_state``).

    One module (``rnn.weight_ih_l0`` ... or unprefixed): its layer, or a ``Sequential`` of
    its layers (``num_layers > 1``); the recurrent layers return PyTorch's ``output``.
    ``kind`` (``"RNN"``, ``"LSTM"``, ``"GRU"``, ``"Linear"``, ``"Embedding"``) checks the
    recurrent kind read from the shapes, and tells a lone ``weight`` apart.

    A whole model (embedding, recurrent module, head; see the module docstring): a
    ``Sequential``; ``kind`` is then a dict ``{submodule name: kind}`` for names not read by
    themselves, and ``head_on`` (``"last"`` by default, ``"final"``, ``"sequence"``) says
    what the head reads. ``nonlinearity`` (``"tanh"``/``"relu"``, not stored in a state)
    is nn.RNN's.
    """
    if head_on is not None and head_on not in HEAD_ON:
        raise ValueError(f"head_on={head_on!r}: expected one of {', '.join(HEAD_ON)}.")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity={nonlinearity!r}: nn.RNN has 'tanh' or 'relu'.")
    entries = plan(state, kind)
    kinds = [k for _, k, _ in entries]
    if head_on is not None and "Linear" not in kinds[1:]:
        raise ValueError(f"head_on={head_on!r} says what a Linear head after the recurrent "
                         "module reads; this state has no such head.")
    if nonlinearity != "tanh" and "RNN" not in kinds:
        raise ValueError(f"nonlinearity={nonlinearity!r} is nn.RNN's; this state holds "
                         f"{', '.join(kinds)}.")
    if len(entries) == 1:
        return _one_module(entries[0], nonlinearity)
    head_on = head_on or "last"
    layers, inp = [], None
    for name, k, sub in entries:
        where = f"submodule {name!r}"
        if k == "Embedding":
            layers.append(_embedding(sub, where))
            inp = Input(shape=(None,), dtype="int64")
        elif k in RECURRENT:
            _, f_in, hidden, n, bidi, bias = _check_recurrent(name, sub, k)
            inp = inp or Input(shape=(None, f_in))
            has_head = entries[-1][1] == "Linear"
            last = None
            if has_head and head_on != "sequence" and not (bidi and head_on == "last"):
                last = (False, False, "concat")
            layers += recurrent_from_arrays(k, sub, n, bidi, bias, nonlinearity, last)
            if has_head and bidi and head_on == "last":
                layers.append(_last_step(2 * hidden))
        else:
            layers.append(_dense(sub, where))
    return Sequential([inp] + layers)


def _one_module(entry, nonlinearity):
    _, kind, state = entry
    if kind in RECURRENT:
        _, f_in, _, num_layers, bidirectional, use_bias = recurrent_spec(state, kind)
        layers = recurrent_from_arrays(kind, state, num_layers, bidirectional, use_bias,
                                       nonlinearity)
        if len(layers) == 1:
            return layers[0]
        return Sequential([Input(shape=(None, f_in))] + layers)
    return _dense(state, "Linear") if kind == "Linear" else _embedding(state, "Embedding")


def torch_reference(state, kind=None, nonlinearity="tanh", head_on=None):
    """The torch module the state describes under ``from_torch_state``'s reading (batch
    first; the head on ``head_on``), its weights loaded: what ``unrolled verify`` runs."""
    import torch
    from torch import nn

    entries = plan(state, kind)
    head_on = head_on or "last"
    mods, bidi = nn.ModuleDict(), False
    for i, (name, k, sub) in enumerate(entries):
        if k in RECURRENT:
            _, f_in, hidden, n, bidi, bias = recurrent_spec(sub, k)
            extra = {"nonlinearity": nonlinearity} if k == "RNN" else {}
            mods[f"m{i}"] = getattr(nn, k)(f_in, hidden, num_layers=n, bidirectional=bidi,
                                          bias=bias, batch_first=True, **extra)
        elif k == "Embedding":
            mods[f"m{i}"] = nn.Embedding(*np.shape(sub["weight"]))
        else:
            w = sub["weight"]
            mods[f"m{i}"] = nn.Linear(w.shape[1], w.shape[0], bias="bias" in sub)
        mods[f"m{i}"].load_state_dict({key: torch.from_numpy(np.asarray(v, np.float32))
                                       for key, v in sub.items()})

    class StateModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = mods

        def forward(self, x):
            h = None
            for (_, k, _), m in zip(entries, self.mods.values()):
                if k in RECURRENT:
                    x, h = m(x)
                    h = h[0] if isinstance(h, tuple) else h
                    continue
                if k == "Linear" and h is not None and head_on == "last":
                    x = x[:, -1]
                elif k == "Linear" and h is not None and head_on == "final":
                    x = torch.cat([h[-2], h[-1]], 1) if bidi else h[-1]
                x = m(x)
            return x

    return StateModel().eval()
