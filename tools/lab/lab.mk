# Lab targets, included by the top-level Makefile.
#   make lab-build                  build binaries and export charts (cached per versions.env)
#   make lab-up [CLUSTERS=4]        start the clusters (no-op when already up)
#   make lab-status                 non-zero exit and the component's name when one is down
#   make lab-down                   stop everything, remove the network namespace
VENV ?= .venv
LAB_PYTHON ?= $(VENV)/bin/python
# The build needs only the stdlib, so it does not wait for the virtualenv.
LAB_BUILD_PYTHON ?= python3
CLUSTERS ?= 4
LAB_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

.PHONY: lab-build lab-up lab-down lab-status

lab-build:
	$(LAB_BUILD_PYTHON) $(LAB_DIR)build.py

lab-up: $(VENV)/.installed
	$(LAB_PYTHON) $(LAB_DIR)lab.py up --clusters $(CLUSTERS)

lab-down:
	$(LAB_PYTHON) $(LAB_DIR)lab.py down

lab-status:
	$(LAB_PYTHON) $(LAB_DIR)lab.py status

.PHONY: lab-test
lab-test: $(VENV)/.installed ## the lab's own tests (brings the lab up if needed)
	$(VENV)/bin/pytest -q -m lab tests/lab
