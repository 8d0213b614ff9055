# Quick start: `make demo` (the notebook's story) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-all test-unit test-matrix test-oldest bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The runtime install: NumPy and the package, nothing else.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test install: Keras (tensorflow-cpu) and PyTorch (CPU) as references.
# tf_keras (Keras 2 on TensorFlow, the reference for Keras 2 files) declares a dependency on
# the `tensorflow` package, which would install a second TensorFlow over tensorflow-cpu:
# it goes in without its dependencies, TensorFlow being there already.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps 'tf_keras==2.21.0'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/unrolled demo

# The suite runs with the compiled float32 kernels (numba is a test dependency); the Keras
# and PyTorch parity modules then run again on the plain NumPy path (np.tanh, no numba).
# Both passes run on up to 4 worker processes (pytest-xdist), one per core: on 2 cores the
# suite takes about half the time of one process.
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 4 ] && n=4; echo $$n)

# Keras computes the references eagerly in `make test` (tests/conftest.py: the same Keras
# train step op by op, about twice as fast as tracing a tf.function per tiny model);
# `make test-all` runs them in Keras's default graph mode and runs every case of the
# sampled tests (UNROLLED_TEST_ALL).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n $(JOBS)
	UNROLLED_COMPILED=0 $(BIN)/python -m pytest -q -n $(JOBS) -p no:cacheprovider $(NUMPY_PATH_TESTS)

# tests/unit/: the library's own checks (cells, loop, backward, files, fast path), which
# need no reference framework: run here as if TensorFlow, Keras, PyTorch and ONNX were not
# installed (about a minute). The rest of tests/ compares with them.
test-unit: $(VENV)/.installed-test
	UNROLLED_TEST_NUMPY_ALONE=1 $(BIN)/python -m pytest -q -n $(JOBS) tests/unit

test-all: $(VENV)/.installed-test
	UNROLLED_TEST_KERAS_GRAPH=1 UNROLLED_TEST_ALL=1 $(BIN)/python -m pytest -q -n $(JOBS)
	UNROLLED_TEST_KERAS_GRAPH=1 UNROLLED_TEST_ALL=1 UNROLLED_COMPILED=0 $(BIN)/python -m pytest \
	  -q -n $(JOBS) -p no:cacheprovider $(NUMPY_PATH_TESTS_ALL)

# Portability without a CI matrix: the suite under OpenBLAS's Haswell (AVX2), SkylakeX
# (AVX-512) and Prescott (generic SSE) kernels, on 1 and 2 BLAS threads. NumPy's wheels pick
# their kernels at run time, so OPENBLAS_CORETYPE selects them on one machine (a CPU runs
# the kernels of its own kind and older ones: SkylakeX needs AVX-512). MATRIX_TESTS narrows
# it (default: the whole suite, six times: about half an hour on 2 cores). Then test-oldest.
MATRIX_CORES ?= Haswell SkylakeX Prescott
MATRIX_TESTS ?=
test-matrix: $(VENV)/.installed-test
	@set -e; for core in $(MATRIX_CORES); do for threads in 1 2; do \
	  echo "== OPENBLAS_CORETYPE=$$core OPENBLAS_NUM_THREADS=$$threads"; \
	  OPENBLAS_CORETYPE=$$core OPENBLAS_NUM_THREADS=$$threads $(BIN)/python -m pytest -q \
	    -n $(JOBS) -p no:cacheprovider $(MATRIX_TESTS); \
	done; done
	$(MAKE) test-oldest

# The oldest versions pyproject.toml allows (NumPy 1.23, with the oldest releases of the
# extras that work beside it on Python 3.11), in a venv of their own: tests/unit, with the
# compiled kernels and without. The reference frameworks need newer NumPy (TensorFlow 2.21:
# NumPy >= 1.26), so the parity tests run with the current versions only.
OLDEST := numpy==1.23.2 numba==0.60.0 threadpoolctl==3.5.0 h5py==3.8.0 pandas==2.0.0 \
          matplotlib==3.6.3 pytest pytest-xdist hypothesis>=6.100
.venv-oldest/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install --quiet --upgrade pip
	.venv-oldest/bin/python -m pip install --quiet $(foreach p,$(OLDEST),'$(p)')
	.venv-oldest/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-oldest: .venv-oldest/.installed
	.venv-oldest/bin/python -c "import numpy; assert numpy.__version__ == '1.23.2', numpy.__version__"
	UNROLLED_TEST_NUMPY_ALONE=1 .venv-oldest/bin/python -m pytest -q -n $(JOBS) -p no:cacheprovider tests/unit
	UNROLLED_TEST_NUMPY_ALONE=1 UNROLLED_COMPILED=0 .venv-oldest/bin/python -m pytest -q -n $(JOBS) \
	  -p no:cacheprovider tests/unit

# The NumPy path's second pass: the cells' Keras parity modules in `make test`; the wrappers
# and training modules too in `make test-all`. Those two exercise the time loop and the
# models, which both paths share; what differs between the paths, the cell steps, is
# checked here against Keras and in tests/unit/test_fast.py against the compiled kernels.
NUMPY_PATH_TESTS := tests/reference/layers/recurrent/test_lstm_gru.py tests/reference/layers/recurrent/test_simple_rnn.py tests/reference/test_notebook.py
NUMPY_PATH_TESTS_ALL := $(NUMPY_PATH_TESTS) tests/reference/layers/test_wrappers.py tests/reference/models/test_training.py

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks

# A longer fuzzing run of the file readers than CI's 2000 examples (500 a format): 25000 a
# format, freshly random. A .h5 that hangs the HDF5 library costs its 3 s parse time limit.
fuzz: $(VENV)/.installed-test
	FUZZ_RANDOM=1 FUZZ_FORMATS=$${FUZZ_FORMATS:-.keras,.h5,.unrolled.npz,.weights.npz} FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-25000} $(BIN)/python -m pytest -q tests/unit/io/test_fuzz.py

clean:
	rm -rf $(VENV) .venv-oldest build *.egg-info src/*.egg-info
