# tether's image: the server by default (`tether serve`), and every other command
# (`tether controller`, `tether retrain`, `mlflow server`, `mlflow artifacts download`).
#   docker build -t tether:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD:/app" tether:0.1.0
# Any base with Python 3.11+ and its venv module works: the default, or a Debian root
# filesystem with python3 and python3-venv (`make image` makes one with mmdebstrap and
# builds on it with podman; docs/kubernetes.md).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
# HOME, where MLflow and matplotlib keep their files, is tether's own folder (the chart
# mounts a volume there), so the root filesystem can be read-only.
ENV PATH=/opt/tether/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    TETHER_HOME=/var/lib/tether \
    HOME=/var/lib/tether
RUN groupadd --gid 10001 tether \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/tether --no-create-home \
       --shell /usr/sbin/nologin tether \
    && mkdir -p /app /var/lib/tether /var/lib/mlflow \
    && chown tether:tether /app /var/lib/tether /var/lib/mlflow \
    && python3 -m venv /opt/tether
# One stage, so the ~900 MB of dependencies are written once: their layer comes first
# (installed for a placeholder package, then it is removed) and outlives code changes.
WORKDIR /opt/tether/src
COPY pyproject.toml README.md ./
RUN mkdir -p src/tether && touch src/tether/__init__.py \
    && python -m pip install ".[postgres,s3]" \
    && python -m pip uninstall --yes tether \
    && rm -rf src
COPY src ./src
RUN python -m pip install --no-deps . && cd / && rm -rf /opt/tether/src
# --build-arg FLOWER=true adds Flower's own environment at /opt/flower, for a federated
# trainer's `tether retrain` (`flwr`; the chart's flower.bin). Its own virtualenv: Flower
# pins starlette, uvicorn and protobuf versions tether's server does not run with. The
# pins are deploy/flower/requirements.txt's (a test keeps them equal).
ARG FLOWER=false
RUN if test "$FLOWER" = "true"; then \
        python3 -m venv /opt/flower \
        && /opt/flower/bin/pip install "flwr==1.42.0" "numpy>=1.26,<3"; \
    fi
# The project (tether.yaml and its trainer) is mounted or copied here.
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["tether"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
