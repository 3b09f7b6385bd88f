# Everything installs into .venv; the two quickstart targets create it on first use.
# `make demo` installs only what the demo needs (the package and its dependencies); `make test`
# adds the dev tools and the GPU extra (NVIDIA Warp) on top, so that the Warp kernels are tested.
VENV ?= .venv
PY := $(VENV)/bin/python
# On the project machines `torch==2.13.0` resolves to a local CPU wheel; override to pick another build.
TORCH_SPEC ?= torch==2.13.0
OUT ?= out/quickstart

.PHONY: demo test lint docs venv clean notebooks

# The full development environment (what `make test` uses).
venv: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev,gpu,docs]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/softras render --out $(OUT)

lint: venv
	$(VENV)/bin/ruff check softras tests benchmarks

# The documentation site (mkdocs.yml): any warning fails the build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet -d out/site

test: venv lint docs
	$(PY) -m pytest -n logical --maxprocesses=4

# Re-execute docs/tutorials/*.ipynb and store their outputs (pictures) in the committed files.
notebooks: venv
	$(PY) docs/scripts/execute_notebooks.py

clean:
	rm -rf $(VENV) out .pytest_cache
