# Quick start: `make demo` (the notebook's story) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The runtime install: NumPy and the package, nothing else.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test install: Keras (tensorflow-cpu) and PyTorch (CPU) as references.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/unrolled demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks

# A longer fuzzing run of the file readers than CI's 2000 examples.
fuzz: $(VENV)/.installed-test
	FUZZ_RANDOM=1 FUZZ_FORMATS=$${FUZZ_FORMATS:-.keras,.h5,.unrolled.npz,.weights.npz} FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-25000} $(BIN)/python -m pytest -q tests/test_fuzz.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
