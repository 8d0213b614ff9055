"""Bridges to other frameworks: PyTorch (``interop.torch``), ONNX (``interop.onnx_export``)
and dask (``interop.dask_scoring``). Each imports its framework inside its functions, so
importing them here needs NumPy alone."""
from .dask_scoring import score_with_dask
from .onnx_export import to_onnx
from .torch import from_torch, from_torch_state, load_torch_state, to_torch

__all__ = ["from_torch", "from_torch_state", "load_torch_state", "score_with_dask", "to_onnx",
           "to_torch"]
