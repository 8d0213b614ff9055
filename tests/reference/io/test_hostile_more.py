"""Hostile files and data, second audit of issue 26: what still escaped as a bare exception
or reached the terminal. Each test failed on the code before its fix.

- an archive member marked encrypted (26.5/26.9): ``RuntimeError`` from zipfile in
  ``unrolled inspect x.weights.npz``;
- JSON nested deeper than ``json`` can follow, in ``model_from_json`` or a ``.pt``
  checkpoint's config (26.9): ``RecursionError``;
- a ``.pt`` checkpoint's or ``model_from_json``'s config with a value of the wrong type
  (26.9, found by mutating configs): ``AttributeError``/``TypeError``, and a traceback from
  the CLI, which maps only its documented errors to one line;
- a float8 tensor in a ``.pt`` state (26.9): ``TypeError`` from torch;
- ANSI escapes in layer and model names through ``summary()`` (26.10).
"""
import contextlib
import io
import json
import zipfile

import numpy as np
import pytest

from unrolled.interop import commands
from unrolled.io.safety import ModelFileError, UnsupportedModelError
from unrolled.layers import LSTM, Dense, Input
from unrolled.models import Sequential, model_from_json

import torch  # noqa: E402  (a test dependency: CI installs it, so no skip)

ESC = "\x1b[2J\x1b]0;title\x07"


def _model(name="m", lstm="l", dense="d"):
    return Sequential([Input((3, 2)), LSTM(4, name=lstm), Dense(1, name=dense)], name=name)


def _encrypt_flags(raw):
    """The archive with every member's "encrypted" flag bit set (local and central headers)."""
    raw = bytearray(raw)
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = raw.find(magic)
        while i >= 0:
            raw[i + offset] |= 1
            i = raw.find(magic, i + 4)
    return bytes(raw)


@pytest.mark.parametrize("suffix", [".weights.npz", ".unrolled.npz", ".keras"])
def test_an_encrypted_member_is_refused_by_name(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    model = _model()
    (model.save_weights if suffix == ".weights.npz" else model.save)(path)
    path.write_bytes(_encrypt_flags(path.read_bytes()))
    with pytest.raises(UnsupportedModelError, match="is encrypted"):
        with contextlib.redirect_stdout(io.StringIO()):
            commands.inspect(str(path))                     # raw zip reader, no boundary


def _checkpoint(tmp_path, mutate, model=None):
    from unrolled.interop.torch_checkpoint import checkpoint_dict
    ckpt = checkpoint_dict(model or _model())
    ckpt["config"] = mutate(json.loads(ckpt["config"]))
    path = tmp_path / "m.pt"
    torch.save(ckpt, path)
    return str(path)


def _initializer_module_not_text(config):
    config["config"]["layers"][1]["config"]["kernel_initializer"]["module"] = 1.5
    return json.dumps(config)


def _batch_shape_not_a_list(config):
    config["config"]["layers"][0]["config"]["batch_shape"] = 1.5
    return json.dumps(config)


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("mutate", [_initializer_module_not_text, _batch_shape_not_a_list,
                                    lambda config: DEEP])
def test_a_malformed_pt_checkpoint_config_is_a_model_file_error(tmp_path, mutate, capsys):
    from unrolled.cli import main
    from unrolled.interop import load_torch_model
    path = _checkpoint(tmp_path, mutate)
    with pytest.raises(ModelFileError):
        load_torch_model(path)
    assert main(["inspect", path]) == 1                     # one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("unrolled inspect: error: ") and "Traceback" not in err


@pytest.mark.parametrize("mutate", [_initializer_module_not_text, _batch_shape_not_a_list,
                                    lambda config: DEEP])
def test_malformed_json_text_is_a_model_file_error(mutate):
    text = mutate(json.loads(_model().to_json()))
    with pytest.raises(ModelFileError):
        model_from_json(text)


def test_a_float8_tensor_in_a_pt_state_is_a_model_file_error(tmp_path):
    from unrolled.interop.torch import load_torch_state
    state = torch.nn.LSTM(2, 4, batch_first=True).state_dict()
    path = tmp_path / "f8.pt"
    torch.save({k: v.to(torch.float8_e4m3fn) for k, v in state.items()}, path)
    with pytest.raises(ModelFileError, match="float8_e4m3fn"):
        load_torch_state(str(path))


@pytest.mark.parametrize("built", [True, False])
def test_summary_escapes_control_characters_in_names(built):
    if built:
        model = _model("m" + ESC, "l" + ESC, "d\r" + ESC)
    else:
        model = Sequential([LSTM(4, name="l" + ESC), Dense(1, name="d\r")], name="m" + ESC)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert not any(c in text for c in "\x1b\x07\r")
    assert "\\x1b[2J" in text and 'Model: "m\\x1b[2J' in text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    assert "\x1b" not in out.getvalue()


def test_the_pt_config_still_loads_and_computes_when_well_formed(tmp_path, rng):
    from unrolled.interop import load_torch_model
    model = _model()
    path = _checkpoint(tmp_path, json.dumps, model)
    x = rng.standard_normal((2, 3, 2)).astype("float32")
    np.testing.assert_allclose(load_torch_model(path).predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_a_sequential_model_is_built_once_not_once_per_layer(monkeypatch, rng):
    """26.10/26.4 (time): ``Sequential([...])`` rebuilt its graph after every layer, so a
    file declaring a 2,000-layer stack took ~1 min to load (N^2/2 layer calls); Keras
    builds once (``add(layer, rebuild=False)``)."""
    calls = []
    build = Sequential._build_graph
    monkeypatch.setattr(Sequential, "_build_graph",
                        lambda self, t: (calls.append(1), build(self, t))[1])
    model = Sequential([Input((3,))] + [Dense(2, name=f"d{i}") for i in range(300)])
    assert len(calls) == 1
    text = model.to_json()
    calls.clear()
    again = model_from_json(text)
    assert len(calls) == 1
    again.set_weights(model.get_weights())
    x = rng.standard_normal((2, 3)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    model.add(Dense(1, name="last"))                        # add() still rebuilds by default
    assert len(calls) == 2 and model.output_shape == (None, 1)


def test_a_save_that_cannot_start_names_the_target_not_the_temporary_file(tmp_path, capsys):
    """26.2: a missing directory (or one where no file can be made) was reported with the
    temporary name (``.../.tmp-1a2b-123-xyz``), which the user never asked for."""
    from unrolled.cli import main
    target = tmp_path / "missing" / "m.keras"
    with pytest.raises(FileNotFoundError) as info:
        _model().save(target)
    assert info.value.filename == str(target) and ".tmp-" not in str(info.value)
    _model().save(tmp_path / "m.keras")
    assert main(["convert", str(tmp_path / "m.keras"), str(target)]) == 1
    err = capsys.readouterr().err
    assert str(target) in err and ".tmp-" not in err
