"""The shared leaf every layer may import: settings, the Kafka plumbing and the request lifecycle."""
