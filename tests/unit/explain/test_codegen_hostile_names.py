"""Generated code holds a model's names as data, never as code (issue 26, item 1).

A model loaded from someone's file can be named anything. ``to_numpy_code`` used to paste
the model's and the inputs' names into the program's docstring, so a name holding three
quotes and a statement ran that statement when the user ran the program. Here every
hostile name must come back, through ``ast``, as the value of a string literal, and the
program's statements must be the template's whatever the names are.
"""
import ast
import subprocess
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unrolled.explain import to_numpy_code
from unrolled.layers import LSTM, Dense, Input
from unrolled.models import Model

HOSTILE = [
    '"""\nimport os; os.system("touch PWNED")\n"""',
    "'''\nraise SystemExit(3)\n'''",
    'a\\"""; raise SystemExit(3); """',
    "line\u2028raise SystemExit(3)",
    "x\r\nraise SystemExit(3)\r\n#",
    "\\\n",
    "é名\u00b2 9-lives class",
]


def _model(model_name, input_name, layer_name):
    i = Input((4, 3), name=input_name)
    h = LSTM(2, name=layer_name)(i)
    return Model(i, Dense(1, name=layer_name + "_head")(h), name=model_name)


def _statements(code):
    """The program's top-level statements, each as its kind and (for an assignment) its
    target: what the template writes, with the names' values left out."""
    out = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign):
            target = node.targets[0]
            out.append(("assign", target.id if isinstance(target, ast.Name)
                        else ast.unparse(target.value)))          # W[...] = array
        else:
            name = getattr(node, "name", None)                    # functions: ASCII names
            assert name is None or (name.isascii() and name.isidentifier()), name
            out.append((type(node).__name__, name if name in ("predict",) else None))
    return out


def _literal(code, target):
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == target:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{target} not assigned")


TEMPLATE = _statements(to_numpy_code(_model("m", "x_in", "lstm")))


def test_hostile_names_are_literals_and_the_program_runs_as_written(tmp_path):
    for k, name in enumerate(HOSTILE):
        model = _model(name, name + "_in", name)
        code = to_numpy_code(model)
        assert _statements(code) == TEMPLATE, name
        assert _literal(code, "MODEL_NAME") == name
        assert _literal(code, "INPUTS") == [(name + "_in", (None, 4, 3))]
        path = tmp_path / f"model_{k}.py"
        path.write_text(code, encoding="utf-8")
        x = np.random.default_rng(k).standard_normal((2, 4, 3)).astype("float32")
        np.save(tmp_path / "x.npy", x)
        run = subprocess.run([sys.executable, str(path), str(tmp_path / "x.npy"), "--out",
                              str(tmp_path / "y.npy")], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, (name, run.stderr)
        assert not (tmp_path / "PWNED").exists()
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12))
def test_any_name_leaves_the_template_alone(name):
    code = to_numpy_code(_model(name, name + "_i", name))
    assert _statements(code) == TEMPLATE
    assert _literal(code, "MODEL_NAME") == name
