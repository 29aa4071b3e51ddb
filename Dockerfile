# One image for every pipeline service; docker-compose.yml chooses the module with `command`
# (e.g. ["python", "-m", "consumer.storage"]), so the image has no default service of its own.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Requirements first: the dependency layer is rebuilt only when requirements.txt changes.
# Runtime requirements only: requirements-dev.txt (pytest, ruff, TA-Lib, testcontainers…) never
# enters the image. Every pinned package has a manylinux wheel (librdkafka and libpq ship inside
# theirs).
COPY requirements.txt .
RUN pip install -r requirements.txt

# A home directory because yfinance keeps its cookie and timezone caches under ~/.cache.
RUN useradd --create-home --uid 10001 pipeline
# The source and recordings/ (/app/recordings: DATA_SOURCE=replay's default REPLAY_DIR).
COPY . .
USER pipeline
# The ARIMA kernels (numba) compiled once, into the image: /app is root's, so the cache lives in
# the pipeline user's home, where every container's first fit loads it instead of compiling.
ENV NUMBA_CACHE_DIR=/home/pipeline/.cache/numba
RUN python -m ml.arma_kernels
