FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
# The lock's test extra (pytest…) comes along; production images are issue *Production deployment*'s.
RUN pip install --no-cache-dir -r requirements.lock
COPY app app
COPY topics topics
COPY agents agents
COPY providers providers
COPY sinks sinks
RUN pip install --no-cache-dir --no-deps .
# The worker drains in-flight requests on SIGTERM (up to the longest flow timeout).
STOPSIGNAL SIGTERM
CMD ["beat", "--help"]
