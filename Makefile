# scaleplan — two commands for a newcomer: `make app` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.scaleplan-installed
# CPU machines: keep the CPU torch wheel (see constraints.txt). GPU users: `make CONSTRAINTS= test`.
CONSTRAINTS ?= constraints.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: install app test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(PIP_C) "torch>=2.1"
	$(BIN)/python -m pip install -q $(PIP_C) -e '.[test]'
	@touch $(STAMP)
	@echo "scaleplan installed in $(VENV)"

app: $(STAMP)
	$(BIN)/scaleplan app --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The whole pipeline at small scale, from scratch, into DEMO_STUDY (the bundled studies/demo was made
# by `make demo DEMO_STUDY=studies/demo`; rerunning that only redoes what is missing).
DEMO_STUDY ?= studies/demo-local
demo: $(STAMP)
	$(BIN)/scaleplan demo --study $(DEMO_STUDY)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
