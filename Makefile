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

.PHONY: install app test demo bench clean torchtitan

# The real torchtitan 0.3.0 for its export test, in a folder of its own (its pins would downgrade
# the venv's huggingface_hub); tests/test_export_torchtitan_real.py reads SCALEPLAN_TORCHTITAN_PATH.
TORCHTITAN_DIR ?= $(HOME)/.cache/scaleplan/torchtitan-0.3.0
TORCHTITAN_PKGS := torchtitan==0.3.0 triton==3.9.0 tyro==1.0.17 typeguard==4.6.1 docstring_parser==0.18.0 \
	torchdata==0.11.0 torch_checkpointing==0.1.1 spmd_types==0.2.3 einops==0.8.2 datasets==4.7.0 dill==0.4.0 \
	multiprocess==0.70.18 xxhash==4.1.0 httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 sniffio==1.3.1 \
	tensorboard==2.21.0 tensorboard_data_server==0.7.2 absl_py==2.5.1 markdown==3.11.3 werkzeug==3.1.9
torchtitan: $(STAMP)
	@test -d $(TORCHTITAN_DIR)/torchtitan || $(BIN)/python -m pip install -q --no-deps --target $(TORCHTITAN_DIR) $(TORCHTITAN_PKGS)
	@echo "export SCALEPLAN_TORCHTITAN_PATH=$(TORCHTITAN_DIR)"

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
