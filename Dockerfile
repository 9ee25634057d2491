# The playground on the CPU: docker build -t playground . && docker run -p 8000:8000 -v playground-data:/data playground
# The image runs the same install script as `./play` (scripts/install.sh), which CI runs outside Docker.
FROM python:3.11-slim

# PyTorch's CPU wheel index: a plain torch from PyPI would pull several GB of CUDA packages.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PLAYGROUND_VENV=/opt/venv \
    PLAYGROUND_HOST=0.0.0.0 \
    PLAYGROUND_PORT=8000 \
    PLAYGROUND_DATA_DIR=/data \
    PYTHONUNBUFFERED=1

RUN useradd --create-home --uid 10001 playground
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY scripts ./scripts
COPY server ./server
COPY web ./web
RUN PLAYGROUND_TORCH_INDEX="$TORCH_INDEX" scripts/install.sh \
    && mkdir -p /data && chown playground:playground /data

USER playground
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PLAYGROUND_PORT', '8000'), timeout=4)"]
CMD ["/opt/venv/bin/python", "-m", "server"]
