"""The package layout keeps its design (issue 22): the subpackages import each other without
a circle, and only the fast path imports numba.

Every module of ``src/unrolled`` is parsed with ``ast`` (nothing is imported). A node of the
graph is a subpackage (``layers``, ``models``, ``io``, ``fast``...) or a top-level module
(``activations``, ``utils``...; ``unrolled`` itself, the package's ``__init__``, is one
too); an edge A -> B is an import, in some module of A, of a module of B (or a name of B's
``__init__``) that runs when the module is imported: at module level, class bodies
included, but not inside a function.

* The module-level graph is acyclic: the subpackages form layers, each built on the ones
  below it.
* An import inside a function that goes "up" (to a node that reaches the importer's node at
  module level, so that it would close a circle if it were moved to the top) is listed in
  ``UPWARD`` with its reason. A new one fails until it is listed; a listed one that is gone
  fails until it is removed, so the list stays the truth.
* No module outside ``fast/`` imports numba, at module level or in a function.
"""
import ast
from pathlib import Path

import unrolled

PACKAGE = Path(unrolled.__file__).resolve().parent

# (importing module, node it reaches up to): why the import is made at call time.
UPWARD = {
    ("activations", "fast"):
        "the vectorized float32 tanh lives in the optional fast path, which builds on the "
        "activations (fast.cells reads them): imported at the first tanh",
    ("layers.recurrent.loop", "fast"):
        "the time loop's one hook to the fast path (fast.plan), which builds on the cells: "
        "imported at the first call",
    ("fast.warm", "unrolled"):
        "python -m unrolled.fast.warm compiles the kernels by running small models built "
        "with the package's Input and Sequential: a command above the library",
    ("models", "saving"):
        "unrolled.models.load_model/save_model (Keras 2's keras.models names) are the file "
        "formats', which build models",
    ("models.functional", "saving"):
        "Model.save, save_weights, load_weights and to_json write the file formats, which "
        "build models",
    ("models.subclassed", "saving"):
        "a subclassed model's save_weights/load_weights follow saving's file-suffix rules",
    ("models.pickling", "saving"):
        "pickling a model stores its Keras config and weights as the file formats do",
}


def _modules():
    """``{dotted name under unrolled ("" for the package itself): path}``."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _node(name):
    """The graph node of module ``name``: its subpackage, or the top-level module itself."""
    return name.split(".")[0] if name else "unrolled"


def _imports(tree, in_function=False):
    """``(import node, inside a function)`` for every import statement of ``tree``."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        deeper = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.Lambda))
        yield from _imports(child, deeper)


def _targets(name, node):
    """The modules of unrolled (dotted, "" for the package) that import ``node`` loads, and
    the names of other top-level packages it imports."""
    inside, outside = [], []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "unrolled" or alias.name.startswith("unrolled."):
                inside.append(alias.name[len("unrolled."):] if "." in alias.name else "")
            else:
                outside.append(alias.name.split(".")[0])
        return inside, outside
    if node.level == 0:
        module = node.module or ""
        if module != "unrolled" and not module.startswith("unrolled."):
            return [], [module.split(".")[0]]
        base = module[len("unrolled."):] if "." in module else ""
    else:
        here = name.split(".") if name else []
        package = here if name in PACKAGES else here[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    for alias in node.names:
        sub = f"{base}.{alias.name}" if base else alias.name
        inside.append(sub if sub in MODULES else base)
    return inside, outside


def _graph():
    """(module-level edges {node: {node}}, function-level imports [(module, node)], modules
    importing numba)."""
    edges = {_node(n): set() for n in MODULES}
    late, numba = [], []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, in_function in _imports(tree):
            inside, outside = _targets(name, node)
            if "numba" in outside:
                numba.append(name)
            for target in inside:
                a, b = _node(name), _node(target)
                if a == b:
                    continue
                if in_function:
                    late.append((name, b))
                else:
                    edges[a].add(b)
    return edges, late, numba


EDGES, LATE, NUMBA = _graph()


def _reaches(edges, start, goal):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(edges[node])
    return False


def _cycle(edges):
    """One circle of the graph as a list of nodes, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_module_level_imports_between_subpackages_have_no_circle():
    assert _cycle(EDGES) is None, " -> ".join(_cycle(EDGES))


def test_the_graph_has_the_layers_the_design_names():
    # The fast path builds on the cells and activations, never the other way round; the file
    # formats (saving) build models; io, the bytes under them (atomic writes, the checks of
    # untrusted files, the HDF5 sandbox), knows no model; models and layers import neither
    # saving, io nor fast's kernels.
    assert {"layers", "activations"} <= EDGES["fast"]
    assert "fast" not in EDGES["layers"] | EDGES["activations"]
    assert "models" in EDGES["saving"] and "io" in EDGES["saving"]
    assert not {"models", "layers", "saving"} & EDGES["io"]
    assert not {"io", "saving", "explain", "interop"} & (EDGES["models"] | EDGES["layers"])
    assert EDGES["unrolled"] >= {"layers", "models", "saving"}


def test_every_upward_import_in_a_function_is_listed_with_its_reason():
    upward = {(module, node) for module, node in LATE if _reaches(EDGES, node, _node(module))}
    new = sorted(upward - set(UPWARD))
    gone = sorted(set(UPWARD) - upward)
    assert not new, f"imports in functions that go up (list them in UPWARD, or move them): {new}"
    assert not gone, f"UPWARD lists imports that no longer go up (remove them): {gone}"
    assert all(len(reason) > 20 for reason in UPWARD.values())


def test_only_the_fast_path_imports_numba():
    outside = sorted(m for m in NUMBA if _node(m) != "fast")
    assert not outside, f"numba imported outside unrolled/fast: {outside}"
    assert NUMBA, "the fast path imports numba: the parser must see it"


def test_import_unrolled_needs_numpy_alone_and_leaves_numba_out(tmp_path):
    """With numba (and the other optional packages) unimportable, ``import unrolled`` and an
    LSTM's predict work: ``fast.kernels`` (the switch) is imported at the first tanh, finds
    no numba, and the reference steps run."""
    import os
    import subprocess
    import sys
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'numba', 'llvmlite', 'torch', 'h5py', 'keras',\n"
        "                                  'tensorflow', 'onnx', 'threadpoolctl'}:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, _Block())\n")
    code = ("import sys, unrolled, numpy as np\n"
            "m = unrolled.Sequential([unrolled.Input((4, 2)), unrolled.layers.LSTM(3)])\n"
            "m.predict(np.zeros((2, 4, 2), 'float32'), verbose=0)\n"
            "loaded = sorted(n for n in sys.modules if n.split('.')[0] in {'numba', 'llvmlite'})\n"
            "print(loaded, 'unrolled.fast.kernels' in sys.modules)\n"
            "try:\n    import numba\nexcept ImportError:\n    print('blocked')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[] True", "blocked"], out.stdout
