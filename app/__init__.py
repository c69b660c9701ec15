"""Beat's wiring: the CLI, the embedded stack, process supervision and the HTTP facade."""
