# Every target does its own set-up from a fresh clone: .venv is created and
# the project installed (editable, so sql/ and expectations/ are read in place).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo

.PHONY: test demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/ccm generate --out $(DEMO)/landing --patients 200 --months 3 --seed 7
	$(BIN)/ccm run --landing $(DEMO)/landing --warehouse $(DEMO)/warehouse.duckdb \
	    --claims-dir $(DEMO)/claims --as-of $$($(BIN)/python -m transforms.generate --suggest-as-of $(DEMO)/landing)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
