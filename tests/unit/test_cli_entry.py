"""The process entry of the command line (``unrolled.cli.console``): ``main``'s exit code,
then the interpreter's last garbage collection skipped (issue 23: once numba's kernels are
loaded, collecting their ~100k cyclic objects at exit cost 0.15-0.5 s of every command).
``main``, which scripts and tests call in-process, must leave the collector alone."""
import gc
import tomllib
from pathlib import Path

from unrolled import cli

ROOT = Path(__file__).resolve().parents[2]


def test_console_returns_mains_code_and_freezes_the_collector(monkeypatch):
    monkeypatch.setattr(cli, "main", lambda argv=None: 3)
    assert gc.get_freeze_count() == 0
    try:
        assert cli.console() == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_main_leaves_the_collector_alone(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path / "missing.keras")]) == 1
    assert "missing.keras" in capsys.readouterr().err
    assert gc.get_freeze_count() == 0


def test_the_script_and_python_m_use_the_console_entry():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["unrolled"] == "unrolled.cli:console"
    main_module = (ROOT / "src" / "unrolled" / "__main__.py").read_text()
    assert "console()" in main_module
