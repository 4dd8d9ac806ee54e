# Two commands for everyone: `make run` (execute every notebook) and `make test` (unit tests
# plus nbval over every notebook). Both create .venv and install on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# Graded runs: make run PARAMS=grading.yaml RUN_ARGS="-p epochs 2 --name my-run"
PARAMS ?=
RUN_ARGS ?=
PYTEST_ARGS ?=

# Kernels started by nbval/papermill resolve "python" through PATH: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONHASHSEED := 0

.PHONY: help install data run test lab lint refresh-notebooks

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,instructor,browser,book]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (once)

data: install  ## build the built-in dataset into data/sample if missing
	$(PY) -m course_utils.part_one.dataset_generator

run: data  ## execute every notebook with papermill into runs/ (PARAMS=file.yaml, RUN_ARGS=...)
	$(PY) -m course_utils.instructor.run_notebooks $(if $(PARAMS),--params $(PARAMS)) $(RUN_ARGS)

# The grading sandbox is confined by bubblewrap: install Debian's package if missing (needs
# root/apt). Without it grading stops before any submission runs (GRADE_ARGS="--isolation none"
# grades trusted notebooks unconfined, with rlimits and timeouts only; summary.md says so).
INSTALL_BWRAP := command -v bwrap >/dev/null || (apt-get update && apt-get install -y bubblewrap) \
  || echo "warning: bwrap (bubblewrap) missing: grading will stop until it is installed"

# Figures drawn under test go to runs/, so a test run never rewrites the committed figures/.
test: data  ## unit tests + nbval over every notebook
	@$(INSTALL_BWRAP)
	COURSE_FIGURES_DIR=$(CURDIR)/runs/test/figures $(PY) -m pytest tests notebooks $(NBVAL_FLAGS) $(PYTEST_ARGS)

# The student course bundle on its own (slow): unzipped outside the checkout, `pip install -e .`
# into a fresh venv (torch 2.13.0, the CPU wheel on disk), every notebook run as shipped (stops
# at the first exercise) and with the master's answers (runs through, every check passes).
.PHONY: test-bundle
test-bundle: data  ## the student bundle in a fresh venv: install, run every notebook twice
	COURSE_BUNDLE_TESTS=1 $(PY) -m pytest tests/test_student_bundle_venv.py -v -s $(PYTEST_ARGS)

# The stored outputs must hold on any CPU. Re-run the whole suite with other CPU kernels: torch's
# portable code path, AVX2 (oneDNN, MKL) on an AVX-512 machine, and one thread (another
# summation order). A variant that changes a stored output fails here, not on the next machine.
KERNEL_VARIANTS := "ATEN_CPU_CAPABILITY=default" \
  "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2" \
  "OMP_NUM_THREADS=1"
# Grading, the student bundle's and the book's leak checks and the sandbox compare no CPU-kernel
# result (they take a third of the suite's time), nor do the runs of 01/03/04 on made-up
# datasets and of 05-07 on other parameters (they check printed claims against the numbers
# printed beside them), so the variants leave them to `make test`.
KERNEL_SKIP ?= not test_grading and not student_bundle and not test_book and not other_dataset and not other_parameters
.PHONY: test-kernels
test-kernels: data  ## the suite again under each CPU-kernel variant (KERNEL_VARIANTS)
	for variant in $(KERNEL_VARIANTS); do \
	  echo "== kernel variant: $$variant"; \
	  env $$variant COURSE_FIGURES_DIR=$(CURDIR)/runs/test/figures \
	    $(PY) -m pytest tests notebooks $(NBVAL_FLAGS) -q -k "$(KERNEL_SKIP)" $(PYTEST_ARGS) \
	    || exit 1; \
	done

# Real-browser test of the student path (tests/browser): JupyterLab + headless Chromium run one
# notebook with Run All Cells, and read every page of the book `make book` built.
# Installs Debian's chromium if missing (needs root/apt).
#   make test-browser BROWSER_NB=07_im2col_and_fold.ipynb
BROWSER_NB ?=
.PHONY: test-browser
test-browser: data book  ## JupyterLab + headless Chromium: run a notebook (BROWSER_NB=name), read the book
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	COURSE_BROWSER_TESTS=1 BROWSER_NOTEBOOK="$(BROWSER_NB)" COURSE_BOOK_DIR=$(CURDIR)/$(BOOK_OUT) \
	  $(PY) -m pytest tests/browser -p no:cacheprovider -v $(PYTEST_ARGS)

# The course as a static site, two editions: $(BOOK_OUT)/student/ (each exercise as its question
# and stub, from a fresh release in a temporary folder) and $(BOOK_OUT)/instructor/ (everything),
# from the committed, executed notebooks (nothing re-executed). Open <edition>/index.html, or
# copy the folder to any static host.
BOOK_OUT ?= book/_build
BOOK_ARGS ?=
.PHONY: book
book: install  ## the course as a static HTML site: book/_build/{student,instructor}/index.html
	$(PY) -m course_utils.instructor.book --out $(BOOK_OUT) $(BOOK_ARGS)

lab: data  ## open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

lint: install  ## ruff over the package, tests, notebooks and benchmarks
	$(VENV)/bin/ruff check course_utils tests notebooks benchmarks

# Speed benchmarks (CPU, several minutes): each prints RATIO lines measured side by side in one run.
BENCHES ?= bench_pipeline bench_cold bench_decode bench_training bench_flops bench_memory bench_conv bench_grading
.PHONY: bench
bench: data  ## speed benchmarks in benchmarks/ (BENCHES="bench_flops ..." for a subset)
	for b in $(BENCHES); do PYTHONPATH=$(CURDIR) $(PY) benchmarks/$$b.py || exit 1; done

# Maintainers only: re-execute notebooks IN PLACE to refresh their stored outputs, e.g.
#   make refresh-notebooks NB=notebooks/01_data_exploration.ipynb
NB ?= notebooks/*.ipynb
refresh-notebooks: data  ## re-execute notebooks in place (NB=path) to refresh stored outputs
	for nb in $(NB); do \
	  (cd notebooks && $(abspath $(VENV))/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=1200 \
	    --ExecutePreprocessor.record_timing=False "$$(basename $$nb)") || exit 1; \
	done

# Exercises (issue 9). Instructors: `make release` writes dist/student/<notebook>/,
# dist/autograder/<notebook>/ (hidden tests: keep it) and dist/student-course/ + .zip (the
# student course bundle: hand it out); `make grade SUBMISSIONS=dir` grades every folder or
# zip in dir against the assignment its notebook declares (issue 19: the whole course, all
# cores, resumable) into GRADES: gradebook.csv, summary.md, marks_template.csv and per
# assignment <assignment>/ (grades.csv, feedback/, written/, summary.md, similarity.md/.html).
# ASSIGNMENT=NN_name grades only that one; JOBS=N submissions at once (default: every core);
# SHARD=K/N the K-th of N parts (then `make merge-grades SHARDS="dir0 dir1 ..."`).
# Students: `make submit STUDENT=your-id ASSIGNMENT=NN_name` zips
# dist/student/NN_name/NN_name.ipynb (or SUBMIT_NB=path) into
# submissions/your-id__NN_name.zip; the assignment is read from the notebook, a mismatch and an
# existing zip are refused (REPLACE=1 replaces it). Grading reports a notebook whose name and
# notebook disagree as a row of the notebook's assignment, never grades it as another one.
ASSIGNMENT ?=
SUBMISSIONS ?= submissions
GRADES ?= grades
GRADE_ARGS ?=
JOBS ?=
SHARD ?=
SHARDS ?=
RELEASE_ARGS ?=
STUDENT ?=
REPLACE ?=
SUBMIT_NB ?= $(if $(ASSIGNMENT),dist/student/$(ASSIGNMENT)/$(ASSIGNMENT).ipynb)
.PHONY: release grade merge-grades grade-fixtures submit export
release: install  ## student + autograder versions into dist/ (stops on changed student work; RELEASE_ARGS=--backup)
	$(PY) -m course_utils.instructor.grading release --out dist $(RELEASE_ARGS)

grade: install  ## grade SUBMISSIONS=dir (every assignment; ASSIGNMENT=, JOBS=, SHARD=K/N) into GRADES=grades/
	@$(INSTALL_BWRAP)
	$(PY) -m course_utils.instructor.grading grade $(SUBMISSIONS) \
	  $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) $(if $(JOBS),--jobs $(JOBS)) \
	  $(if $(SHARD),--shard $(SHARD)) --out $(GRADES) $(GRADE_ARGS)

merge-grades: install  ## the course's tables in GRADES from the shards' folders SHARDS="dir0 dir1 ..."
	@test -n "$(SHARDS)" || { echo 'usage: make merge-grades SHARDS="grades-0 grades-1 ..." [GRADES=grades]'; exit 2; }
	$(PY) -m course_utils.instructor.grading merge $(SHARDS) --out $(GRADES) $(GRADE_ARGS)

grade-fixtures: install  ## grade the made-up submissions of tests/fixtures/submissions (fresh release in a temp folder)
	@$(INSTALL_BWRAP)
	$(PY) -m course_utils.instructor.grading fixtures --out $(GRADES)/fixtures

SUBMIT_USAGE := usage: make submit STUDENT=your-id ASSIGNMENT=NN_name [SUBMIT_NB=path] [REPLACE=1]
submit: install  ## zip your notebook: make submit STUDENT=your-id ASSIGNMENT=NN_name [SUBMIT_NB=path]
	@test -n "$(STUDENT)" -a -n "$(SUBMIT_NB)" || { echo "$(SUBMIT_USAGE)"; exit 2; }
	$(PY) -m course_utils.submit $(SUBMIT_NB) --student $(STUDENT) --out $(SUBMISSIONS) \
	  $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) $(if $(REPLACE),--replace)

export: install  ## write the package modules from the notebooks' `#| export` cells
	$(PY) -m course_utils.instructor.grading export
