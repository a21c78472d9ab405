# Two commands do all set-up on a fresh machine:
#   make demo   install, then run every experiment in quick mode (writes runs/tour-*/index.html)
#   make test   install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build on disk; a looser pin would pull gigabytes of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test,ray]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/trainlab tour --out runs

test: install
	$(PY) -m pytest

bench: install
	for f in bench/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
