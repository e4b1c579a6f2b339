# One image for every cityops service (producers, intake, worker, sink, pager, migrations).
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cityops ./cityops
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
COPY pager ./pager
COPY dashboards ./dashboards
COPY bench ./bench
RUN pip install . && useradd --create-home --uid 10001 cityops
USER cityops
ENTRYPOINT ["cityops"]
CMD ["--help"]
