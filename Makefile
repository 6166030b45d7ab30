# The two set-up commands are `make demo` and `make test`; both create .venv on first use.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-all lint bootstrap clean

bootstrap:
	@bash scripts/bootstrap.sh

## demo: run the main job end to end (validate the example models, show the profiles)
demo: bootstrap
	@$(PY) examples/demo.py

## test: the default test suite (slow tests excluded)
test: bootstrap
	$(PY) -m pytest -q -m "not slow"

## test-all: every test, slow ones included
test-all: bootstrap
	$(PY) -m pytest -q

## lint: ruff over the whole tree
lint: bootstrap
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
