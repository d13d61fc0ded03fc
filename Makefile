# Two commands matter: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
# uv from PATH if there is one, else a private copy installed from PyPI into .tools/.
UV_ON_PATH := $(shell command -v uv 2>/dev/null)
ifeq ($(UV_ON_PATH),)
UV := .tools/bin/uv
UV_DEP := .tools/bin/uv
else
UV := $(UV_ON_PATH)
UV_DEP :=
endif
SERVICES := scheduler consent messenger
export UV_PYTHON_DOWNLOADS := never

.PHONY: install system-packages demo up test lint typecheck unit asyncapi clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet 'uv>=0.9,<0.14'

# Debian tools the test suite uses: promtool checks the alert rules (the suite falls back to
# a schema check without it) and chromium drives the browser tests. Needs root and apt;
# CI runs it before `make test`.
system-packages:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then echo "system packages present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $$missing >/dev/null \
		|| { apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing >/dev/null; }; \
	else echo "cannot install$$missing (needs root and apt-get)"; fi

install: $(UV_DEP)
	$(UV) sync --all-packages --frozen --python $(PYTHON)

demo: install
	$(UV) run --no-sync parley demo

up: install
	$(UV) run --no-sync parley up

lint: install
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

typecheck: install
	$(UV) run --no-sync mypy -p parley_shared -p parley_scheduler -p parley_consent \
		-p parley_messenger -p parley_sandbox -p parley_cli

test: lint typecheck
	$(UV) run --no-sync pytest

asyncapi: install
	mkdir -p docs/asyncapi
	for service in $(SERVICES); do \
		$(UV) run --no-sync python -m parley_$$service asyncapi > docs/asyncapi/$$service.json || exit 1; \
	done

clean:
	rm -rf .parley .tools
