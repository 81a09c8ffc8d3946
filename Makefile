# Everyday shortcuts. CONFIG names a primary config (conf/run_*.yaml); OVERRIDES are Hydra overrides:
#   make args CONFIG=run_qwen3_4B OVERRIDES="optimizer.lr=2e-6 +experiment=quick_test"
CONFIG ?= run_qwen3_4B
OVERRIDES ?=
SWEEP ?= optimizer.lr=1e-6,3e-6
PYTHON ?= python
# The tools and benchmarks below run this checkout's package, whether or not it is the installed one.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
GENERATE = $(PYTHON) tools/generate_args.py --config-name $(CONFIG) $(OVERRIDES)
LAUNCHER = scripts/$(subst _,-,$(CONFIG)).sh

.PHONY: help args show-config tree plan deep-check provenance sweep train goldens check test bench bench-algorithms bench-loop bench-multinode

help:  ## list the targets and the variables they read
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
	@printf '\nvariables (make TARGET NAME=value):\n'
	@printf '  CONFIG=%s\tthe primary config (conf/run_*.yaml)\n' '$(CONFIG)'
	@printf '  OVERRIDES=%s\tHydra overrides, e.g. "optimizer.lr=2e-6 +experiment=quick_test"\n' '$(OVERRIDES)'
	@printf '  SWEEP=%s\tthe overrides of make sweep\n' '$(SWEEP)'
	@printf '  PYTHON=%s\tthe Python that runs the tools\n' '$(PYTHON)'

args:  ## write args.sh for CONFIG and OVERRIDES (validated; nothing written on error)
	$(GENERATE) -o args.sh

show-config:  ## the composed config (Hydra's --cfg job)
	$(GENERATE) --cfg job

tree:  ## which files compose CONFIG (Hydra's --info defaults-tree)
	$(GENERATE) --info defaults-tree

plan:  ## the launch plan: GPUs, engines, batch arithmetic, derived values
	$(GENERATE) --plan

deep-check:  ## megatron-core, SGLang, the checkpoint and memory on CONFIG (tools/check_config.py; imports them)
	$(PYTHON) tools/check_config.py --config-name $(CONFIG) $(OVERRIDES)

provenance:  ## every key with its value and the file that set it
	$(GENERATE) --provenance

sweep:  ## one validated args file per combination of SWEEP under multirun/
	$(GENERATE) --multirun $(SWEEP)

train:  ## launch CONFIG with OVERRIDES through its launcher (Ray up, job submitted, Ray down)
	PYTHON=$(PYTHON) bash $(LAUNCHER) $(OVERRIDES)

IMPORTED = tests/fixtures/imported

goldens:  ## regenerate tests/golden/, scripts/models/, docs/arguments.md and the importer's fixtures
	$(PYTHON) tools/generate_args.py --goldens
	$(PYTHON) tools/generate_arguments_doc.py
	rm -rf $(IMPORTED).old && mv $(IMPORTED) $(IMPORTED).old && ok=1 && \
	for script in tests/fixtures/launchers/run-*.sh; do \
	  $(PYTHON) tools/import_launcher.py "$$script" --into $(IMPORTED) >/dev/null || { ok=0; break; }; \
	done; \
	if [ "$$ok" = 1 ]; then rm -rf $(IMPORTED).old; else rm -rf $(IMPORTED); mv $(IMPORTED).old $(IMPORTED); exit 1; fi

check:  ## fail on stale generated files (what CI checks)
	$(PYTHON) tools/generate_args.py --goldens --check
	$(PYTHON) tools/generate_arguments_doc.py --check

test:  ## the test suite (the README's test command)
	$(PYTHON) -m pytest

bench:  ## speed of the parser and the generator, as ratios to baselines
	$(PYTHON) benchmarks/parse_args.py
	$(PYTHON) benchmarks/generate_args.py

bench-algorithms:  ## advantages, returns and losses: batched against the per-token reference (minutes)
	$(PYTHON) benchmarks/algorithms.py

bench-loop:  ## the tiny run through its launcher against an in-process loop over the same functions (minutes)
	$(PYTHON) benchmarks/loop_overhead.py

bench-multinode:  ## the tiny megatron run on three network-namespace hosts against one (root; minutes)
	$(PYTHON) benchmarks/multinode.py
