# The two commands a new user needs: `make demo` and `make test`.
# Both create .venv on first use (see tools/setup_env.sh) and reuse it after.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV
# torch's OpenMP threads spin while waiting; on a small shared machine that
# makes steps several times slower (measured 6 s -> 1.2 s per DenseCL R18 step)
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: env demo test test-fast lint clean-env

env:
	@bash tools/setup_env.sh

## make demo [QUICK=1] [FORCE=1]: the DenseCL story on real data, on a CPU
demo: env
	$(PY) tools/demo.py $(if $(QUICK),--quick) $(if $(FORCE),--force)

## make test [PYTEST_ARGS=...]: the whole test suite
test: env
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

## make test-fast: everything but the tests marked slow
test-fast: env
	$(PY) -m pytest -q -m "not slow" tests $(PYTEST_ARGS)

## make lint: ruff (pycodestyle + pyflakes), isort's import order and
## import-linter's architecture contracts (the plugin never imports the lab,
## its layers, no import circles), as CI runs them (settings: pyproject.toml);
## `--fix` / `isort .` to apply
lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/isort --check-only --diff .
	$(VENV)/bin/lint-imports --no-cache

clean-env:
	rm -rf $(VENV)
