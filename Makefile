# Two commands matter: `make run` and `make test`. Everything installs into .venv from requirements.lock.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint check bench install clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

install: $(VENV)/.installed

run: install  ## migrate, load demo data, serve on $(PORT) with a Celery worker + beat beside it
	PORT=$(PORT) scripts/run.sh

test: install lint  ## the whole suite: embedded profile, then PostgreSQL + Redis when their URLs are set
	@# the second pass skips what ran identically in the first (tests/conftest.py); -rfEX: no list of those skips
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest
	@if [ -z "$$DATABASE_URL$$REDIS_URL" ]; then echo "DATABASE_URL/REDIS_URL unset: no PostgreSQL/Redis pass"; \
	elif $(PY) scripts/services_reachable.py; then $(PY) -m pytest -rfEX; \
	elif [ "$$CI" = "true" ]; then echo "CI=true: PostgreSQL/Redis must be reachable" >&2; exit 1; \
	else echo "skipping the PostgreSQL/Redis pass: servers unreachable (above)"; fi

lint: install  ## ruff lint + format check, Django system checks, no missing migrations
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

check: lint

bench: install  ## benchmarks print ratios against a baseline measured in the same run
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) var staticfiles
