# Two commands do everything on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The test environment takes torch/torchvision from this machine's local wheels
# (see requirements/test-constraints.txt); the package itself pins nothing.
CONSTRAINTS := requirements/test-constraints.txt

.PHONY: run test test-slow test-core lint bench clean venv

# the core alone (numpy, PyYAML): enough for `make run`
$(BIN)/rfield: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e .
	@touch $@

venv: $(BIN)/rfield

$(VENV)/.full: $(BIN)/rfield
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[all,test]"
	@touch $@

run: $(BIN)/rfield
	$(BIN)/rfield analyze example:seed2
	$(BIN)/rfield analyze example:resnet18

test: $(VENV)/.full
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# every model of torchvision's registry, every smp architecture, one model of every
# timm family and every keras.applications model (on Keras' torch backend, which needs
# no compilation) against back-propagation (CI runs it too)
test-slow: $(VENV)/.full
	$(BIN)/python -m pytest -q -m slow -rs tests/test_torch_zoo.py tests/test_smp.py \
		tests/test_timm_zoo.py tests/test_pt2.py tests/test_torchscript.py \
		tests/test_keras_cli.py tests/test_jax.py tests/test_keras_backends.py
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m slow -rs tests/test_keras_zoo.py

# the core alone (numpy, PyYAML, the test runner): every test that needs a framework
# skips, and nothing else fails (CI runs it after the full suite)
test-core:
	$(PY) -m venv .venv-core
	.venv-core/bin/pip install -q -c $(CONSTRAINTS) -e . pytest hypothesis
	env -u RFIELD_REQUIRE_EXTRAS RFIELD_EXAMPLES=100 .venv-core/bin/python -m pytest -q -p no:cacheprovider

lint: $(VENV)/.full
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(VENV)/.full
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_command.py
	$(BIN)/python bench/bench_onnx.py
	$(BIN)/python bench/bench_tflite.py
	$(BIN)/python bench/bench_empirical.py
	KERAS_BACKEND=tensorflow $(BIN)/python bench/bench_keras.py
	$(BIN)/python bench/bench_jax.py
	$(BIN)/python bench/bench_zoo.py

clean:
	rm -rf $(VENV) .venv-core build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis
