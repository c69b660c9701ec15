"""Flows: plain async functions registered by name in ``registry.FLOWS``."""
