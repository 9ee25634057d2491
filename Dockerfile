# The playground on the CPU, for a classroom or one person:
#   docker build -t playground .
#   docker run -p 8000:8000 -v playground-data:/data -e PLAYGROUND_TEACHER_PASSWORD=... playground
# (compose.yaml does the same with a classroom's limits; docs/TEACHERS.md explains.)
# The image runs the same scripts as `./play`: scripts/install.sh to install (CI runs it outside
# Docker too) and scripts/start.sh to start; tests/classroom/test_deploy.py checks that it does.
FROM python:3.11-slim

# PyTorch's CPU wheel index: a plain torch from PyPI would pull several GB of CUDA packages.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Listening on all addresses puts the server in class mode (tokens, class code, teacher page);
# set PLAYGROUND_OPEN_MODE=true for one person on their own machine.
ENV PLAYGROUND_VENV=/opt/venv \
    PLAYGROUND_HOST=0.0.0.0 \
    PLAYGROUND_PORT=8000 \
    PLAYGROUND_DATA_DIR=/data \
    PLAYGROUND_DEVICE=cpu \
    PLAYGROUND_KERNEL_CACHE=/tmp/nn-playground-kernels \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1

# A C compiler: a class's small dense networks train together in C kernels, built at the
# server's first start (server/train/kernel; without one they take the slower torch path).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 playground
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY scripts ./scripts
COPY server ./server
COPY playground ./playground
COPY web ./web
RUN PLAYGROUND_TORCH_INDEX="$TORCH_INDEX" scripts/install.sh \
    && mkdir -p /data && chown playground:playground /data

USER playground
VOLUME ["/data"]
EXPOSE 8000
# /api/health answers once the server takes jobs; 127.0.0.1 is always an allowed Host.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PLAYGROUND_PORT', '8000'), timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["scripts/start.sh"]
