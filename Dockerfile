# Relevance Studio: one image for web, workers and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data

WORKDIR /app

# torch first, from the CPU wheel index (pinned as in requirements.txt): the default index
# would pull the multi-gigabyte CUDA build. For a GPU training worker build with
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 (or the CUDA version you run).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

RUN mkdir -p /data

RUN useradd --create-home --uid 1000 studio && chown -R studio /data
USER studio

EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
