# tether's image: the server by default (`tether serve`), and every other command
# (`tether controller`, `tether retrain`, `mlflow server`, `mlflow artifacts download`).
#   docker build -t tether:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD:/app" tether:0.1.0
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    TETHER_HOME=/var/lib/tether
RUN groupadd --gid 10001 tether \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin tether \
    && mkdir -p /app /var/lib/tether /var/lib/mlflow \
    && chown tether:tether /app /var/lib/tether /var/lib/mlflow
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir "$(ls /wheels/tether-*.whl)[postgres,s3]" \
    && rm -rf /wheels
# The project (tether.yaml and its trainer) is mounted or copied here.
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["tether"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
