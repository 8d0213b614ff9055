"""Bridges to other frameworks: PyTorch (``interop.torch``), ONNX (``interop.onnx_export``)
and dask (``interop.dask_scoring``). Each imports its framework inside its functions."""
