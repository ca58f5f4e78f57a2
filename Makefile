# Set-up and the two everyday commands. `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ABLATION ?= frozen_peg
ARGS ?=

.PHONY: run test venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the release this machine carries on disk (CPU machines: no GPU needed)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) -m cpvt_lab.run ablation=$(ABLATION) $(ARGS)

test: venv
	$(PY) -m pytest -q $(ARGS)

clean:
	rm -rf $(VENV) outputs
