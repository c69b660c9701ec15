# Beat's production image: the roles only (worker, sink, api, mirror), against a deployment's own Kafka,
# Postgres, Redis, RabbitMQ and S3. The embedded broker and Postgres (`beat[embedded]`) are left out.
FROM python:3.11.11-slim-bookworm

# A system user with no login and no home of its own; its data directory is the only place it writes.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin beat \
    && install -d -o beat -g beat /var/lib/beat
WORKDIR /opt/beat

# Dependencies from the hashed production lock first, so a code change rebuilds only the last layers.
COPY requirements.prod.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.prod.lock
COPY pyproject.toml README.md ./
COPY app app
COPY core core
COPY topics topics
COPY agents agents
COPY providers providers
COPY sinks sinks
RUN pip install --no-cache-dir --no-deps . && rm -rf build

USER beat
ENV BEAT_DATA_DIR=/var/lib/beat \
    PYTHONUNBUFFERED=1
# SIGTERM drains: the worker finishes or hands back its in-flight requests (BEAT_DRAIN_TIMEOUT), the sink and
# mirror commit what they wrote. A role is the command: worker, sink, api, mirror, migrate, topics create.
STOPSIGNAL SIGTERM
ENTRYPOINT ["beat"]
CMD ["worker"]
