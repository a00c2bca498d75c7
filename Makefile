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

.PHONY: demo test venv lint fmt clean-results

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, from the CPU build on local disk; the rest with torch pinned
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	@start=$$(date +%s); \
	snakemake --profile profiles/local $(TARGET) --configfile $(CONFIG) && \
	echo && echo "demo finished in $$(( $$(date +%s) - start )) s. Results:" && \
	for f in results/reports/*/progression.md; do echo "  $$f"; cat "$$f"; done && \
	echo "  figures: $$(ls results/reports/*/*.png | tr '\n' ' ')" && \
	echo "  evals:   results/evals/<model>/<task>.json"

test: venv
	$(PY) -m pytest -q tests

lint: venv
	snakemake --lint
	snakefmt --check Snakefile rules/

fmt: venv
	snakefmt Snakefile rules/
