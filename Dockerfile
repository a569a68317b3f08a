# One image for both roles: `sluice serve` (API) and `sluice worker` (arq).
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv \
 && useradd --create-home --uid 10001 sluice
WORKDIR /app

# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
COPY alembic.ini ./
RUN uv sync --frozen --no-dev && chown -R sluice /app

USER sluice
ENV PATH=/app/.venv/bin:$PATH \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=5001 \
    SLUICE_DATA_DIR=/app/data
EXPOSE 5001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:5001/_health', timeout=2); sys.exit(0)"
CMD ["sluice", "serve"]
