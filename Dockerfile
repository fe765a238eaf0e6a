# The worker image: `docker compose up` runs it beside Kafka and MongoDB.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bench bench
COPY chaos chaos
COPY cli cli
COPY config config
COPY consumers consumers
COPY lifecycle lifecycle
COPY producers producers
COPY schemas schemas
COPY stack stack
COPY store store
COPY tools tools
COPY console console
RUN pip install --no-cache-dir ".[otel]" && useradd --system --uid 10001 fulfillment
USER fulfillment

ENV FULFILLMENT_METRICS_PORT=9400
EXPOSE 9400
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9400/readyz', timeout=4)"
ENTRYPOINT ["fulfillment"]
CMD ["worker"]
