# syntax=docker/dockerfile:1
# Driftline image: `driftline api` by default; `driftline worker` / `driftline migrate` as the
# command. Multi-stage: dependencies are built in a throwaway stage; the runtime stage holds
# the virtual environment only and runs as an unprivileged user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY migrations migrations
COPY detectors detectors
COPY engine engine
COPY storage storage
COPY control_api control_api
COPY driftline driftline
# the wheel carries the Alembic scripts as storage/control_migrations (setup.py)
RUN pip install --upgrade pip && pip install .

FROM python:3.11-slim AS runtime
ARG UID=10001
RUN groupadd --system --gid "$UID" driftline \
    && useradd --system --uid "$UID" --gid driftline --home-dir /var/lib/driftline \
        --create-home --shell /usr/sbin/nologin driftline
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRIFTLINE_DATA_DIR=/var/lib/driftline
WORKDIR /var/lib/driftline
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["driftline"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
