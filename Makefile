# Set-up and the two everyday commands. `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ABLATION ?= frozen_peg
ARGS ?=
# torch's OpenMP threads sleep while they wait instead of spinning: on a machine doing other work too the
# same run is several times faster (docs/cpu_study.md). cpvt_lab sets it too; a value of yours is kept.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test study venv clean gpu-carry

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned, so that pip resolves no other release (it runs on a CPU as well as a GPU)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) -m cpvt_lab.run ablation=$(ABLATION) $(ARGS)

# one test process per core (at most 8): the tests are small and single-threaded; ARGS="-n 0" runs them in one
test: venv
	$(PY) -m pytest -q -n auto --maxprocesses=8 $(ARGS)

# the CIFAR-10 study, from where it stands (docs/study.md); e.g. make study ARGS=budget_seconds=360
study: venv
	$(PY) -m cpvt_lab.study continue $(ARGS)

# What a GPU machine without a network needs beside the checkout, in folders git ignores: Hydra's wheels
# (pure Python; antlr4 4.9.3 exists only as source, so it is built here) and the CIFAR-10 JPEG archive.
gpu-carry: venv
	# what the GPU image lacks, for its Python 3.12 (scipy is the only compiled one)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d wheels \
		hydra-core==1.3.8 omegaconf==2.3.1 tabulate pytest iniconfig pluggy 'scipy<1.17'
	$(PY) -m pip wheel --quiet --no-deps -w wheels antlr4-python3-runtime==4.9.3
	mkdir -p data_local && cp $${CPVT_CIFAR10_JPEG:-../shared/data/cifar10-jpeg.tar.gz} data_local/cifar10-jpeg.tar.gz

# outputs/ holds your runs' rows and tables too (outputs/results, outputs/tables), not only checkpoints
clean:
	rm -rf $(VENV) outputs
