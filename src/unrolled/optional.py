"""Optional dependencies, imported where they are used: ``require`` imports one, or raises
an ImportError that says which extra installs it, before the feature does any work;
``import_quietly`` imports a framework without the lines its native code writes to stderr."""
import importlib
import os
import sys

EXTRAS = {"matplotlib": "plot", "pandas": "explain", "h5py": "h5", "onnx": "onnx",
          "onnxruntime": "onnx", "dask": "dask", "numba": "fast", "threadpoolctl": "fast"}


def require(module, feature):
    """``module`` imported, or ImportError: "<feature> needs <module>: pip install ..."."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ImportError(f"{feature} needs {top}, which is not installed: pip install "
                          f"'unrolled[{EXTRAS.get(top, top)}]'.") from None


def import_quietly(module):
    """``module`` imported with file descriptor 2 pointed at /dev/null meanwhile.

    TensorFlow 2.21 writes log lines from C++ when it is imported (absl's "All log messages
    before absl::InitializeLog() is called..." and oneDNN's notice, twice) whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; a command that compares with Keras would otherwise end
    its one-line error, or its clean output, under them. An import that fails still raises
    its ImportError; Python's ``sys.stderr`` is flushed before and writes as usual after."""
    if sys.modules.get(module) is not None:                  # (None: blocked, import raises)
        return sys.modules[module]
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        return importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
