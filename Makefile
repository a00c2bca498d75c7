# The two set-up commands of a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
TARGET ?= all
CONFIG ?= config/config.yaml

.PHONY: demo test smoke venv sysdeps lint fmt dag status plan bench run nanotron-env report

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, from the CPU build on local disk; the rest with torch pinned
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	# the workflow's own package (zflow), editable
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed sysdeps

# System packages the workflow itself needs: bubblewrap (bwrap), the sandbox of the GRPO code
# reward (docs/sandbox.md). Installed from Debian when missing and root; else a note.
sysdeps:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap (the code reward's sandbox)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "note: no bwrap (Debian bubblewrap); the code reward will refuse to start:" \
	    "install it, or see posttrain.<name>.train.rewards[].allow_process_sandbox in docs/sandbox.md"; fi; }

# Config files given with CONFIG are read strictly first (zflow.inputs: a syntax error, a tab or a
# duplicate key named with file and line; Snakemake's own YAML error names neither).
CHECK_CONFIG = $(PY) -m zflow.inputs $(CONFIG) >/dev/null

demo: venv
	@$(CHECK_CONFIG)
	@start=$$(date +%s); \
	snakemake --profile profiles/local $(TARGET) --configfile $(CONFIG) && \
	echo && echo "demo finished in $$(( $$(date +%s) - start )) s. Results:" && \
	for f in results/reports/*/progression.md; do echo "  $$f"; cat "$$f"; done && \
	for f in results/reports/*/compare.md results/reports/*/sft_delta.md; do \
	  if test -f "$$f"; then echo "  $$f"; cat "$$f"; fi; done && \
	echo "  figures: $$(ls results/reports/*/*.png results/reports/*/tables/*.png | tr '\n' ' ')" && \
	echo "  the whole report: results/reports/report.md ($$(grep -c '^## Table' results/reports/report.md) tables); HTML: make report" && \
	echo "  evals:   results/evals/<model>/<task>.json" && \
	echo "  post-trained models: $$(ls -d results/posttrain/*/model 2>/dev/null | tr '\n' ' ')"

# The production config's own DAG (config/zagreus.yaml, target all_ita) end to end on this CPU,
# shrunk by config/smoke.yaml, with local stand-ins of the same shape for what lives on a hub
# (zflow/smoke/): see docs/smoke.md for what it proves and what it does not. In SMOKE_DIR
# (default .smoke/; a second run resumes); tests/test_smoke.py reads its results.
SMOKE_DIR ?= .smoke
smoke: venv
	@start=$$(date +%s); $(PY) -m zflow.smoke.run --dir $(SMOKE_DIR) && \
	echo "smoke finished in $$(( $$(date +%s) - start )) s: $(SMOKE_DIR)/smoke.json"

test: venv
	$(MAKE) smoke
	ZFLOW_SMOKE_DIR=$(abspath $(SMOKE_DIR)) $(PY) -m pytest -q -rs --durations=25 tests

# Any target with any profile: `make run TARGET=all_ita PROFILE=slurm`. PROFILE: local, gpu or
# slurm (the links at the repository root to profiles/) or a profile directory. --configfile
# only when CONFIG is given (make run CONFIG=...): else the profile's config (slurm:
# config/zagreus.yaml) or the embedded default. ARGS: more snakemake options (ARGS=--dry-run).
PROFILE ?= local
run: venv
	@$(if $(filter-out file,$(origin CONFIG)),$(CHECK_CONFIG))
	snakemake --profile $(PROFILE) $(TARGET)$(if $(filter-out file,$(origin CONFIG)), --configfile $(CONFIG)) $(ARGS)

# The HTML report of what has run (every table and figure, captions, the evals' provenance): one
# self-contained file. Run after `make demo` (or any run of TARGET); REPORT= another path.
REPORT ?= results/reports/report.html
report: venv
	snakemake $(TARGET) --configfile $(CONFIG) --cores 1 --report $(REPORT)
	@echo "open $(REPORT) in a browser; the tables in document order: results/reports/report.md"

lint: venv
	snakemake --lint
	snakefmt --check Snakefile rules/

fmt: venv
	snakefmt Snakefile rules/

DAG_DIR ?= results/dag
SMK = snakemake $(TARGET) --configfile $(CONFIG) --cores 1

# The job DAG and the rule graph of TARGET, without running anything: dot, SVG (when graphviz's
# `dot` is installed: apt-get install graphviz) and mermaid text.
dag: venv
	@mkdir -p $(DAG_DIR)
	@name=$$(basename $(CONFIG) .yaml)-$(TARGET); \
	$(SMK) --dag dot > $(DAG_DIR)/$$name.jobs.dot && \
	$(SMK) --rulegraph dot > $(DAG_DIR)/$$name.rules.dot && \
	$(SMK) --dag mermaid-js > $(DAG_DIR)/$$name.jobs.mmd && \
	$(SMK) --rulegraph mermaid-js > $(DAG_DIR)/$$name.rules.mmd && \
	if command -v dot >/dev/null; then \
	  dot -Tsvg $(DAG_DIR)/$$name.jobs.dot > $(DAG_DIR)/$$name.jobs.svg; \
	  dot -Tsvg $(DAG_DIR)/$$name.rules.dot > $(DAG_DIR)/$$name.rules.svg; \
	else echo "graphviz 'dot' not installed: SVGs skipped (apt-get install graphviz)"; fi; \
	ls -1 $(DAG_DIR)/$$name.*

# What would run for TARGET and why, in ten seconds of reading: jobs per rule, then reasons; then
# each running or interrupted training's step / train_steps, loss, tokens/s and ETA from its
# metrics (workflow/scripts/status.py), like nanotron's log line.
status: venv
	@$(SMK) --dry-run > $(DAG_DIR).status.log 2>&1 || { tail -20 $(DAG_DIR).status.log; exit 1; }
	@awk '/^Job stats:/ && !s {p=1; s=1} p && /^$$/ {p=0} p' $(DAG_DIR).status.log
	@sed -n '/^Reasons:/,/^This was a dry-run/p' $(DAG_DIR).status.log | grep -v '^This was a dry-run' || true
	@grep -q 'Nothing to be done' $(DAG_DIR).status.log && echo "nothing to do: $(TARGET) is up to date" || true
	@$(PY) workflow/scripts/status.py --configfile $(CONFIG)

# What TARGET would cost, from a dry run (only the stale jobs): per rule and in total, tokens,
# GPU-hours, CPU-hours, disk and wall time, with the config's `cost` figures and their sources.
# `make plan TARGET=all_ita CONFIG=config/zagreus.yaml [PROFILE=slurm]`: --configfile and
# --profile only when given (as `make run`); ARGS: more options of workflow/scripts/cost_plan.py.
plan: venv
	@$(if $(filter-out file,$(origin CONFIG)),$(CHECK_CONFIG))
	@$(PY) workflow/scripts/cost_plan.py --target $(TARGET)$(if $(filter-out file,$(origin CONFIG)), --configfile $(CONFIG))$(if $(filter-out file,$(origin PROFILE)), --profile $(PROFILE)) $(ARGS)

# Benchmarks: each prints a table and writes it into docs/performance.md.
# The pretraining one needs a GPU (`python bench/bench_pretrain.py` on the GPU machine).
bench: venv
	test -d results/tokenizers/bpe_ita_eng_4k || $(MAKE) demo
	$(PY) bench/bench_tokenize.py
	$(PY) bench/bench_pretrain.py --tiny
	@if $(PY) -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then \
	  $(PY) bench/bench_pretrain.py; else echo "no GPU: bench_pretrain.py (0.4B) skipped"; fi

# The nanotron environment of the pretrain_nanotron jobs, built on a GPU node (conda, CUDA 12):
# `make nanotron-env` only prints the commands; `make nanotron-env NANOTRON_DIR=/shared/nanotron`
# runs them (NANOTRON_ENV: the environment's prefix, default <NANOTRON_DIR>-env). Then set
# `pretrain.nanotron.checkout` to NANOTRON_DIR and `pretrain.nanotron.python` to
# <NANOTRON_ENV>/bin/python: every pretrain_nanotron job runs its pre-flight, torchrun and the
# data helper's build in it, and `python workflow/scripts/nanotron_train.py --check
# --configfile <config>` checks it. Never built here (no GPU): see envs/nanotron.yaml.
NANOTRON_COMMIT := d22eb80973cd7906afc975262c1725d34322037e
NANOTRON_ENV ?= $(if $(NANOTRON_DIR),$(NANOTRON_DIR)-env,$${NANOTRON_DIR}-env)
NANOTRON_CHECKOUT = $(or $(NANOTRON_DIR),$${NANOTRON_DIR})
define NANOTRON_STEPS
test -d $(NANOTRON_CHECKOUT)/.git || git clone https://github.com/huggingface/nanotron $(NANOTRON_CHECKOUT)
git -C $(NANOTRON_CHECKOUT) checkout --detach $(NANOTRON_COMMIT)
conda env create -p $(NANOTRON_ENV) -f $(CURDIR)/envs/nanotron.yaml
$(NANOTRON_ENV)/bin/pip install --no-deps -e $(NANOTRON_CHECKOUT)
$(NANOTRON_ENV)/bin/pip install flash-attn==2.6.3 --no-build-isolation
$(NANOTRON_ENV)/bin/python -c 'import sys; sys.path.insert(0, sys.argv[1]); from zflow import nanotron as n; d = sys.argv[2]; p = [x for x in (n.checkout_problem(d), n.nanotron_problem(d), n.datatrove_problem()) if x]; print("\n".join(p) or "nanotron environment OK"); sys.exit(bool(p))' $(CURDIR)/workflow/scripts $(NANOTRON_CHECKOUT)
endef
export NANOTRON_STEPS

nanotron-env:
ifdef NANOTRON_DIR
	bash -euxc "$$NANOTRON_STEPS"
else
	@echo "# On a GPU node with conda (nothing is run; NANOTRON_DIR=<path> runs these):"
	@printf '%s\n' "$$NANOTRON_STEPS"
endif
