"""Postgres writers fed from Kafka, the reconciler, and the schema migrations."""
