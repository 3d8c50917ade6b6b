# This project's image for the coinbase-producer and the one-shot `lakehouse init`: Python 3.11 and
# the `lakehouse` command. Configuration comes only from LAKEHOUSE_* environment variables.
FROM python:3.11.14-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
COPY . /opt/lakehouse
RUN pip install /opt/lakehouse \
 && useradd --system --uid 1000 --create-home lakehouse \
 && mkdir -p /data && chown lakehouse /data
USER lakehouse
WORKDIR /opt/lakehouse
ENTRYPOINT ["lakehouse"]
CMD ["--help"]
