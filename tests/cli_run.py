"""Running the ``unrolled`` command in tests: in this process, or as a user runs it.

``in_process`` calls ``unrolled.cli.main`` (what ``python -m unrolled`` runs) from ``cwd`` and
returns what the process would: its exit code, stdout and stderr. A fresh Python process
costs about a second (imports), ten with Keras or PyTorch, so the suite checks most cases
here; ``in_a_process`` runs the real ``python -m unrolled`` for the cases whose point is the
process itself (its exit status, ``--help``, ``--version``, a traceback let through), and
``tests/system/test_cli_errors.py`` checks that both give the same answer on the same case.

What ``in_process`` reproduces of a process:
- the exit code of ``raise SystemExit(main())``, and of the ``SystemExit`` argparse raises
  for a usage error (``None`` is 0, an int is itself, anything else is printed and is 1);
- Python's warnings as the interpreter shows them by default (on stderr, each once;
  ``DeprecationWarning``, ``PendingDeprecationWarning``, ``ImportWarning`` and
  ``ResourceWarning`` hidden), appended to stderr, so a stray warning still breaks a "one
  line on stderr" check;
- the environment: ``UNROLLED_TRACEBACK`` unset unless given in ``env``.
An exception that escapes ``main`` would end a process with a traceback: here it propagates
and fails the test.
"""
import contextlib
import io
import os
import subprocess
import sys
import warnings

from unrolled import cli

_HIDDEN_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                      ResourceWarning)


@contextlib.contextmanager
def _environment(cwd, env):
    env = env or {}
    old_cwd = os.getcwd()
    saved = {key: os.environ.get(key) for key in {"UNROLLED_TRACEBACK", *env}}
    os.environ.pop("UNROLLED_TRACEBACK", None)
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def in_process(*args, cwd, env=None):
    """``(exit code, stdout, stderr)`` of ``unrolled ARGS`` run in this process from ``cwd``."""
    out, err = io.StringIO(), io.StringIO()
    with _environment(cwd, env), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in _HIDDEN_BY_DEFAULT:
            warnings.simplefilter("ignore", category)
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
                    for w in caught)
    return code, out.getvalue(), err.getvalue() + shown


def in_a_process(*args, cwd, env=None, timeout=300):
    """``(exit code, stdout, stderr)`` of ``python -m unrolled ARGS`` in a fresh process."""
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    full.pop("UNROLLED_TRACEBACK", None)
    full.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "unrolled", *map(str, args)], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr
