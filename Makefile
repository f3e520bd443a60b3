# The course's commands. `make lab` opens the course, `make test` runs every test.
# Both create .venv (Python 3.11+) when it is missing or older than pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JupyterLab refuses to start as root (as in a container) without --allow-root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
PYTEST_NB := --nbval-lax --nbval-current-env --nbval-cell-timeout=900

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
SUDO_N := $(if $(filter 0,$(shell id -u)),,sudo -n)  # never waits for a password

.PHONY: setup sandbox lab test test-unit test-notebooks test-browser run site bench assignments grade clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off -e '.[dev]'
	@touch $(STAMP)

# The grader seals each submission with bubblewrap (Debian's package, installed when missing, as test-browser
# installs Chromium); without it, `unshare` does the same where it works (python -m course_utils.grading.sandbox check).
sandbox:
	@command -v bwrap >/dev/null || ! command -v apt-get >/dev/null || { echo "Installing Debian's bubblewrap for the grader's sandbox"; \
	  $(SUDO_N) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO_N) apt-get install -y -qq bubblewrap; } \
	  || echo "bubblewrap could not be installed: the grader falls back to unshare where it can"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

test: $(STAMP) sandbox
	MPLBACKEND=Agg $(PY) -m pytest tests $(NOTEBOOKS) $(PYTEST_NB) -v -rs

test-unit: $(STAMP) sandbox
	MPLBACKEND=Agg $(PY) -m pytest tests -v -rs

test-notebooks: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest $(NOTEBOOKS) $(PYTEST_NB) -v

# JupyterLab in headless Chromium (Debian's package, installed when missing), driven by Playwright.
test-browser: $(STAMP)
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for the browser test"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	$(PY) -m pytest tests_browser -v -rs

# Execute every notebook into build/ as .ipynb plus HTML.
run: $(STAMP)
	$(PY) scripts/run_notebooks.py --out build $(NOTEBOOKS)
	$(VENV)/bin/jupyter nbconvert --to html --output-dir build $(addprefix build/,$(notdir $(NOTEBOOKS)))

# The website of the executed course (Jupyter Book, offline) in build/site/_build/html/. It is built from the
# executed copies in build/: `make run` and `make test` write them; one older than its notebook or than the
# package is executed again first.
EXECUTED := $(addprefix build/,$(notdir $(NOTEBOOKS)))
PACKAGE := $(shell find course_utils -name '*.py')
build/%.ipynb: notebooks/%.ipynb $(PACKAGE) | $(STAMP)
	$(PY) scripts/run_notebooks.py --out build $<

site: $(STAMP) $(EXECUTED)
	$(PY) scripts/build_site.py --executed build --out build/site

bench: $(STAMP)
	MPLBACKEND=Agg $(PY) scripts/bench.py

# Student versions (solutions removed) in build/assignments/.
assignments: $(STAMP)
	$(PY) -m course_utils.grading assignments notebooks build/assignments

# Grade a folder of submissions: make grade SUBMISSIONS=path/to/folder [JOBS=2]
# Writes build/grades.csv and one feedback page per student in build/feedback/.
JOBS ?= 1
grade: $(STAMP) sandbox
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=path/to/folder [JOBS=2]"; exit 2; }
	$(PY) -m course_utils.grading grade $(SUBMISSIONS) --source notebooks --out build/grades.csv --jobs $(JOBS)

clean:
	rm -rf build
