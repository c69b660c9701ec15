"""Flows: plain async functions, each run for its catalogue entry (``topics/flows.py``) by ``registry.HANDLERS``."""
