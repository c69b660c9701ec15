"""Topic names, the topic registry, and the pydantic models of every record Beat reads or writes on Kafka."""
