"""Bridges to other frameworks: PyTorch (``interop.torch``), ONNX (``interop.onnx_export``)
and dask (``interop.dask_scoring``). Each imports its framework inside its functions, so
importing them here needs NumPy alone."""
from .dask_scoring import score_with_dask
from .onnx_export import to_onnx
from .torch import from_torch, from_torch_state, load_torch_state, to_torch
from .torch_checkpoint import load_torch_model, save_torch_model

__all__ = ["from_torch", "from_torch_state", "load_torch_model", "load_torch_state",
           "save_torch_model", "score_with_dask", "to_onnx", "to_torch"]
