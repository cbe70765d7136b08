# syntax=docker/dockerfile:1
# diffuseLLM images, two targets (docs/DEPLOY.md, "Docker and compose"):
#   docker build --target app    -t diffusellm-app .     # webhooks, admin pages, worker API; no torch
#   docker build --target worker -t diffusellm-worker .  # GPU worker: models, sandboxed validation
# Secrets are never baked in: APP_ID, PRIVATE_KEY(_PATH), WEBHOOK_SECRET, DIFFUSELLM_ADMIN_TOKEN and
# DIFFUSELLM_WORKER_TOKEN come from the environment at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------
# app: the GitHub App (webhooks, admin pages, worker API) on plain Python; core dependencies only.
FROM ${PYTHON_IMAGE} AS app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin diffusellm \
 && install -d -o diffusellm -g diffusellm /var/lib/diffusellm
WORKDIR /opt/diffusellm
COPY pyproject.toml README.md ./
COPY diffusellm ./diffusellm
# The core package plus the PostgreSQL driver; torch and the model stack are not installed here.
RUN pip install ".[postgres]" && rm -rf /opt/diffusellm/build
USER diffusellm
WORKDIR /home/diffusellm
ENV DIFFUSELLM_STATE_DIR=/var/lib/diffusellm
VOLUME ["/var/lib/diffusellm"]
EXPOSE 5001
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5001/healthz', timeout=4)"]
# Inside the container the app listens on all interfaces so the port can be published; publish it
# on the host's loopback only (127.0.0.1:5001:5001) and put the TLS reverse proxy in front.
ENTRYPOINT ["diffusellm", "serve", "--host", "0.0.0.0", "--port", "5001"]

# ---------------------------------------------------------------------------------------------
# worker: pulls jobs from the app over HTTPS (no inbound port), runs the models on the GPU and
# validates every change inside bubblewrap.
FROM ${CUDA_IMAGE} AS worker
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv git bubblewrap ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin diffusellm \
 && install -d -o diffusellm -g diffusellm /var/lib/diffusellm
WORKDIR /opt/diffusellm
# torch first and pinned, from the CUDA wheel index; the rest resolves against it.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
COPY pyproject.toml README.md ./
COPY diffusellm ./diffusellm
RUN pip install ".[ml,gpu,postgres]" && rm -rf /opt/diffusellm/build
USER diffusellm
WORKDIR /home/diffusellm
ENV DIFFUSELLM_STATE_DIR=/var/lib/diffusellm HF_HOME=/var/lib/diffusellm/hf
VOLUME ["/var/lib/diffusellm"]
# DIFFUSELLM_WORKER__SERVER_URL (the setting worker.server_url) is the app's base URL, e.g.
# https://bot.example.org. Not DIFFUSELLM_SERVER: under the DIFFUSELLM_ prefix that name is the
# `server` settings section and would stop the settings from loading. Extra arguments
# (--max-jobs N, --config PATH) are passed on.
ENTRYPOINT ["sh", "-c", "exec diffusellm worker --server \"$DIFFUSELLM_WORKER__SERVER_URL\" \"$@\"", "diffusellm-worker"]
