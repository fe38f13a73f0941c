# The README's two commands: `make train` and `make test`. Both install into .venv on first use (and again
# only when pyproject.toml or requirements.txt change), so a second run starts at once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install train test benchmark lint format tensorboard clean

help: ## list the commands
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -e ".[dev]"
	touch $@

install: $(INSTALLED) ## create .venv with the pinned versions of requirements.txt

train: $(INSTALLED) ## train with the defaults; pass options as ARGS="--model.optimizer Adam ..."
	$(BIN)/python scripts/train.py $(ARGS)

test: $(INSTALLED) ## lint, check formatting and run every test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

benchmark: $(INSTALLED) ## time the project against Lightning's floors (about 7 min; ARGS=--quick for 1 min)
	$(BIN)/python scripts/benchmark.py $(ARGS)

lint: $(INSTALLED) ## fix what ruff can fix and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

tensorboard: $(INSTALLED) ## watch the runs in lightning_logs/ at http://localhost:6006
	$(BIN)/tensorboard --logdir lightning_logs

clean: ## remove .venv and caches (never lightning_logs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
