# collab server image: one image for the server nodes (`collab serve`), the
# code-execution worker (`collab worker`) and one-shot `collab migrate`.
#
#   docker build -t collab .
#   docker run -p 8080:8080 collab          # embedded SQLite, single node
#   docker compose up                       # Postgres + Redis + 2 nodes + worker + LB
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    COLLAB_HOST=0.0.0.0 \
    COLLAB_PORT=8080

# bubblewrap: the sandbox of the code-execution worker. The sandbox runs the
# system interpreters under /usr (/usr/bin/python3, /usr/bin/node), never the
# server's own Python in /usr/local, so those are installed from Debian too.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap python3-minimal nodejs \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 collab \
    && useradd --system --uid 10001 --gid collab --home-dir /app --shell /usr/sbin/nologin collab

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml
# changes. Empty packages stand in for the sources until they are copied.
COPY pyproject.toml README.md ./
RUN mkdir -p collab auth eventstore executor \
    && touch collab/__init__.py auth/__init__.py eventstore/__init__.py executor/__init__.py \
    && pip install -e .

# An editable install keeps the repository layout, so files beside the
# packages (such as the demo bundle) are found as in development.
COPY --chown=collab:collab . .
RUN mkdir -p /app/data && chown collab:collab /app/data

USER collab
VOLUME ["/app/data"]
EXPOSE 8080

# /healthz answers while the process runs; /readyz (used by compose and the
# load balancer) also needs the database and Redis.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('COLLAB_PORT', '8080'), timeout=2)"]

# SIGTERM: stop accepting, close WebSockets with 1012, finish in-flight
# requests (up to 10 s), flush documents, exit 0.
STOPSIGNAL SIGTERM
CMD ["collab", "serve", "--host", "0.0.0.0"]
