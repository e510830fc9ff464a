# Needs only Python 3.11+ and make: uv is used from PATH, or installed into .alliance/tools on first use.
SYSTEM_UV := $(shell command -v uv 2>/dev/null)
UV := $(if $(SYSTEM_UV),$(SYSTEM_UV),.alliance/tools/bin/uv)

.PHONY: up test bench

up: $(UV)
	$(UV) run --frozen alliance up

test: $(UV)
	$(UV) run --frozen pytest

bench: $(UV)
	$(UV) run --frozen python -m bench.ledger

.alliance/tools/bin/uv:
	python3 -m venv .alliance/tools
	.alliance/tools/bin/pip install --quiet --disable-pip-version-check uv
