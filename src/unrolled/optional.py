"""Optional dependencies, imported where they are used: ``require`` imports one, or raises
an ImportError that says which extra installs it, before the feature does any work."""
import importlib

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
