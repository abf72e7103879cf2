# The two commands of the README. Both set everything up on a fresh machine first.
.PHONY: setup demo test test-slow lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/ffasora simulate --n 8 --size 256 --frames 21 --out out/sim-demo --seed 0
	.venv/bin/ffasora show out/sim-demo --out out/sim-demo/contact_sheet.png

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy

test: setup
	bash scripts/setup-browser.sh
	$(MAKE) lint
	.venv/bin/pytest -q

test-slow: setup
	.venv/bin/pytest -q -m slow
