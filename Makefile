# multicloud.interconnect: every task a developer or CI runs goes through this file.
#   make test   set up .venv, lint, sanity, and every pytest suite (what CI runs)
#   make demo   the main job on the embedded lab, then the report
#   make bench  benchmarks that print figures

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The collection is found as multicloud.interconnect through this link (see ansible.cfg).
COLLECTION_LINK := .collections/ansible_collections/multicloud/interconnect
# ansible-test needs the collection at ansible_collections/<ns>/<name>; it is copied from the checkout.
SANITY_ROOT := build/sanity/ansible_collections/multicloud/interconnect
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup lint sanity unit integration pytest test demo validate-example bench changelog clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^[^:]*:([a-z-]+):.*## /\1\t/;s/^([a-z-]+):.*## /\1\t/'

$(VENV)/.installed: requirements-dev.txt requirements.txt constraints.txt
	$(PYTHON_BOOT) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

setup: $(VENV)/.installed $(COLLECTION_LINK) ## create .venv with pinned tools and link the collection

lint: setup ## ansible-lint, production profile
	$(BIN)/ansible-lint

# ansible-test bootstraps pip in its venvs with a script it downloads from outside the package
# index; tools/sanity provides the same step from the index (see the script's docstring).
# The pip version ansible-test 2.19 pins for its venvs (get_venv_packages); ansible-core is pinned too.
ANSIBLE_TEST_PIP := 24.2
GET_PIP_CACHE := $(HOME)/.ansible/test/cache/get_pip_$(subst .,_,$(ANSIBLE_TEST_PIP)).py

$(GET_PIP_CACHE): tools/sanity/get_pip_from_index.py
	mkdir -p $(dir $@)
	cp $< $@

sanity: setup $(GET_PIP_CACHE) ## ansible-test sanity on a copy of the tracked tree
	rm -rf build/sanity
	mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} $(SANITY_ROOT)/
	cd $(SANITY_ROOT) && git init -q && git add -A && \
	  ANSIBLE_CONFIG= $(CURDIR)/$(BIN)/ansible-test sanity --color no --python 3.11 --requirements --exclude tools/

unit: setup ## unit tests of the pure functions and modules
	$(BIN)/pytest -q tests/unit

integration: setup ## playbook runs (the lab-backed ones bring the lab up)
	$(BIN)/pytest -q tests/integration

pytest: setup ## every pytest suite
	$(BIN)/pytest -q

test: ## what CI runs: setup, lint, sanity, every pytest suite, then the time of each (and of each suite)
	$(PYTHON_BOOT) tools/test_steps.py setup lint sanity pytest

demo: setup lab-up ## bring the lab up, run site.yml on it, then print the report (out/status.json, out/topology.svg)
	$(BIN)/ansible-playbook -i inventories/lab playbooks/site.yml \
	  -e '{"status_drawing_note": "Lab: Pods are simulated, links show control-plane state."}'
	@echo "Report: $(CURDIR)/out/status.json   Picture: $(CURDIR)/out/topology.svg"

validate-example: setup ## validate the example inventory and print the report (no cluster needed)
	$(BIN)/ansible-playbook -i inventories/example playbooks/validate.yml

bench: setup lab-up ## benchmarks that print figures (validation, Cilium meshes, site.yml on 2, 4 and 8 clusters)
	$(PY) tools/bench/bench_validate.py
	$(PY) tools/bench/bench_cilium.py
	$(PY) tools/bench/bench_site.py

changelog: setup ## build CHANGELOG.rst from the fragments
	$(BIN)/antsibull-changelog release

clean:
	rm -rf build .collections .pytest_cache tests/output

-include tools/lab/lab.mk
-include tools/vm/vm.mk
