# Two commands do all set-up on a fresh machine:
#   make demo   install, then run every experiment in quick mode (writes runs/tour-*/index.html)
#   make test   install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build on disk; a looser pin would pull gigabytes of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: install demo test bench clean

# Before anything is created: on an older Python pip would stop deep in its resolver.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "trainlab needs Python 3.11 or newer (3.11-3.13 tested); $(PYTHON) is $$($(PYTHON) -c 'import sys; print("Python " + sys.version.split()[0])' 2>/dev/null || echo 'not runnable'): run make $(MAKECMDGOALS) PYTHON=python3.12 (or another)" >&2; \
	  exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test,ray,tensorboard,mlflow,tune]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/trainlab tour --out runs

# one pytest worker per core: each test runs on one torch thread (tests/conftest.py), so a single
# process left the second core idle (532 s against 345 s on the 2-core machine)
test: install
	$(PY) -m pytest -n auto

bench: install
	for f in bench/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
