"""README's ``from unrolled.interop import ...`` works (issue 24.11), and importing it pulls in
no framework: each bridge imports PyTorch, ONNX or dask only when it is called."""
import subprocess
import sys


def test_the_bridges_are_importable_from_unrolled_interop_without_their_frameworks():
    code = (
        "import sys\n"
        "from unrolled.interop import (from_torch, from_torch_state, load_torch_state,\n"
        "                              score_with_dask, to_onnx, to_torch)\n"
        "import unrolled.interop.torch as t, unrolled.interop.onnx_export as o\n"
        "assert from_torch is t.from_torch and to_torch is t.to_torch and to_onnx is o.to_onnx\n"
        "assert from_torch_state is t.from_torch_state and load_torch_state is t.load_torch_state\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'dask', 'tensorflow', 'keras',"
        " 'h5py', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
