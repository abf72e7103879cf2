# The two commands of the README. Both set everything up on a fresh machine first.
.PHONY: setup demo simulate-demo test test-slow lint bench

setup:
	bash scripts/setup.sh

# The main job: one report -> one FFA video with the bundled model (pretrained/, docs/bundled-model.md).
DEMO_REPORT = Left eye: arm-to-retina time 13 s. During the arterial phase, numerous MAs are noted over the \
posterior pole. In the mid (recirculation) phase, there is diffuse hyperfluorescent leakage in the macular area, \
with progressively increasing leakage. Impression: left eye severe non-proliferative diabetic retinopathy.

demo: setup
	.venv/bin/ffasora generate "$(DEMO_REPORT)" --seed 0 --out out/demo/example.mp4
	.venv/bin/ffasora show out/demo/example.mp4 --out out/demo/example_sheet.png --frames 11 --no-video

simulate-demo: setup
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
