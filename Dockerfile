# The bot image: Python 3.11 slim, an unprivileged user, no build tools at run time.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 intake \
    && useradd --system --uid 10001 --gid intake --home-dir /app --shell /usr/sbin/nologin intake

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales
RUN pip install --no-compile . && rm -rf /root/.cache

USER intake
# The key file and the token arrive as secrets (see docker-compose.yml); the
# data folder only holds SQLite when no PostgreSQL is configured.
VOLUME ["/app/data"]
ENTRYPOINT ["intake-bot"]
CMD ["run"]
