# Every target does its own set-up from a fresh clone: .venv is created and
# the project installed (editable, so sql/ and expectations/ are read in place).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo

.PHONY: test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

# Generated drops -> the nightly DAG through Airflow (`airflow dags test`, local
# SQLite metadata DB under demo/airflow) -> claim batch, Data Docs, report.
demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/python -m transforms.devtools.demo --dir $(DEMO)

# Not part of `make test`: N activities (default 10M; N=1000000 for a quick run)
# end to end, next to the bare DuckDB floor and a pandas baseline.
N ?= 10000000
bench: $(STAMP)
	$(BIN)/python -m transforms.devtools.benchmark --n $(N) --keep-going

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
