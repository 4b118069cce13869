# Two commands set everything up from a bare machine: `make run` and `make test`.
PYTHON ?= python3
# sam build needs the Lambda runtime's Python (3.12); fall back to PYTHON when pyenv has none.
SAM_PYTHON ?= $(shell PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null || command -v python3.12 || echo $(PYTHON))
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint typecheck template-lint unit integration e2e build bench bench-venv clean

$(STAMP): requirements-dev.txt layers/core/requirements.txt layers/core/requirements-nodeps.txt pyproject.toml cli/pyproject.toml local/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . -e ./cli -e ./local
	touch $@

$(SAM_STAMP): requirements-sam.txt
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

run: $(STAMP)
	$(BIN)/testrelay demo

test: lint typecheck template-lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/core/testrelay cli/testrelay_cli local/testrelay_local functions

template-lint: $(STAMP) $(SAM_STAMP)
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(BIN)/statelint --ignore=URI statemachine/relay.asl.json

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

build: $(STAMP) $(SAM_STAMP)
	$(BIN)/testrelay routes index config/routes.yaml
	PATH="$(dir $(SAM_PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml
	@echo "CoreLayer: $$(du -sh .aws-sam/build/CoreLayer | cut -f1) unzipped (Lambda allows 250 MB for function + layers); largest:"
	@du -s .aws-sam/build/CoreLayer/python/* | sort -rn | head -5 | awk '{printf "  %6.1f MB  %s\n", $$1 / 1024, $$2}'

bench: $(STAMP)
	$(BIN)/python bench/handler_latency.py
	$(BIN)/python bench/write_back_scale.py --sizes 10000 --vendors browserstack_tm --time-scale 10
	$(BIN)/python bench/write_back_scale.py --sizes 100000 --vendors browserstack_tm --behaviour '{"bs_bulk_results": "present"}'
	$(BIN)/python bench/write_back_scale.py --sizes 10000 100000 --vendors testsigma_tm
	$(BIN)/python bench/shared_budget.py --jobs 2 4 --results 100000 --window 30
	$(BIN)/python bench/reliability.py --quick
	$(BIN)/python bench/jobs_listing.py --jobs 2000 10000
	$(BIN)/python bench/junit_parse.py

# Bench-only tools (trcli, the baseline of bench/junit_parse.py), never in the relay's venv.
bench-venv: .venv-bench/.installed
.venv-bench/.installed: bench/requirements.txt
	python3 -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r bench/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) $(SAM_VENV) .venv-bench .aws-sam .pytest_cache .mypy_cache .ruff_cache
