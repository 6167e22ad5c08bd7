# The two commands of the README:
#   make run    set up .venv with the runtime pins and start the server
#   make test   set up .venv with the test pins too and run the whole suite
#   make s3     a local S3 for development (moto, in memory) with the results bucket made
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The web page tests drive Debian's Chromium (Playwright cannot download its own here);
# the broker-mode tests start Debian's redis-server.
CHROMIUM := /usr/bin/chromium
REDIS_SERVER := /usr/bin/redis-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test s3 install install-dev browser redis sam-tiny-weights

run: install
	$(PY) -m uvicorn app.main:app --host $(HOST) --port $(PORT)

test: install-dev browser redis
	$(PY) -m pytest -n 2 --dist loadfile --durations=20

# moto's S3 server on 127.0.0.1:$(S3_PORT) with bucket $(S3_BUCKET), until Ctrl-C; it prints
# the settings for the API and the workers (scripts/local_s3.py --help).
S3_PORT ?= 9000
S3_BUCKET ?= sam-results
s3: install-dev
	$(PY) scripts/local_s3.py --port $(S3_PORT) --bucket $(S3_BUCKET)

# Retrain the bundled sam_tiny weights from scratch, both phases (about 56 min on 2 cores;
# docs/sam_tiny.md). Phase 1 goes to a scratch file; phase 2 writes app/weights/sam_tiny.pth.
SAM_TINY_PHASE1 ?= /tmp/sam_tiny_phase1.pth
sam-tiny-weights: install
	$(PY) -m sam_tiny.train --out $(SAM_TINY_PHASE1)
	$(PY) -m sam_tiny.train --init-checkpoint $(SAM_TINY_PHASE1) --seed 1 --steps 620 \
		--warmup 50 --lr 6e-5 --loss-size 256 --margin 2 --max-minutes 14

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed
browser: $(CHROMIUM)
redis: $(REDIS_SERVER)

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

# The package's own service is not needed: the tests start redis-server on a free port.
$(REDIS_SERVER):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Meta's sam2 (the SAM 2.1 test oracle) from its hash-pinned sdist: built against the
# torch already installed (no build isolation), without its optional CUDA extension.
$(VENV)/.dev-installed: requirements.txt requirements-dev.txt requirements-oracle.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	SAM2_BUILD_CUDA=0 $(PY) -m pip install --quiet --no-deps --no-build-isolation \
		--require-hashes -r requirements-oracle.txt
	touch $(VENV)/.runtime-installed $@
