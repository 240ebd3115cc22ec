# make app         — set up (first time) and run the Streamlit app
# make test        — set up (first time), lint, check the import rules and run every test tier
# make wheel-check — build the wheel, install it in a fresh venv, run knowpain and knowpain app
# make bench       — set up (first time) and print the speed comparison tables
# make lock        — re-resolve requirements.lock (exact versions with hashes) from pyproject
# make audit       — check the locked versions against the advisory database, when reachable
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: app test bench lint setup clean lock audit wheel-check

# Everything comes from the lock file, hash-checked: two fresh machines get the same versions.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

app: $(STAMP)
	$(VENV)/bin/knowpain app

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

wheel-check: $(STAMP)
	$(PY) scripts/wheel_check.py

lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra bench --generate-hashes \
		--python-version 3.11 --quiet -o requirements.lock --custom-compile-command "make lock"

audit: $(STAMP)
	$(PY) scripts/audit.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts dist
