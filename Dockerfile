# The bot image: Python 3.11 slim, an unprivileged user, no build tools at run time.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 intake \
    && useradd --system --uid 10001 --gid intake --home-dir /app --shell /usr/sbin/nologin intake

WORKDIR /app
# Exactly the locked runtime set, every file checked against its hash (pip
# refuses anything the lock lacks); its own layer, rebuilt only when the lock changes.
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN pip install --no-compile --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales
# The project itself: no dependencies (all locked above), built by the locked
# setuptools rather than whatever build isolation would download.
RUN pip install --no-compile --no-deps --no-build-isolation . \
    && rm -rf /root/.cache build ./*.egg-info

USER intake
# The key file and the token arrive as secrets (see docker-compose.yml); the
# data folder only holds SQLite when no PostgreSQL is configured.
VOLUME ["/app/data"]
ENTRYPOINT ["intake-bot"]
CMD ["run"]
