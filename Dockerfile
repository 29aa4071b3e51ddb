# One image for every pipeline service; docker-compose.yml chooses the module with `command`
# (e.g. ["python", "-m", "consumer.storage"]), so the image has no default service of its own.

# The hot path (shared/hot_path.py) compiled with mypyc in a stage of its own: the C compiler
# stays out of the image, which takes only the compiled modules (built by the same Python).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS hot-path
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN python -m infra.hot_path build \
    && mkdir /compiled \
    && cp --parents $(find . -name '*.so' -not -path './build/*') build/hot_path/manifest.json /compiled/

FROM ${PYTHON_IMAGE}

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
COPY --from=hot-path /compiled/ /app/
USER pipeline
# The ARIMA kernels (numba) compiled once, into the image: /app is root's, so the cache lives in
# the pipeline user's home, where every container's first fit loads it instead of compiling.
ENV NUMBA_CACHE_DIR=/home/pipeline/.cache/numba
RUN python -m ml.arma_kernels
