"""The metrics ports ``beat up`` gives its children, and how it prints them.

Unset ``BEAT_METRICS_PORT``: each role its default (``core.health.DEFAULT_PORTS``); a worker of several
processes takes ``WORKER_CHILDREN_BASE`` + its index instead, clear of the other roles. ``0``: each process a
free port (each logs its own). Any other value: a base, the roles numbered from it in the order they start
(the worker's processes first, one port each).
"""

from __future__ import annotations

from core.health import DEFAULT_PORTS, WORKER_CHILDREN_BASE
from core.settings import Settings

# A command whose metrics role has another name.
METRICS_ROLE = {"listen": "listener"}


def up_metrics_ports(settings: Settings, roles: list[str], workers: int) -> dict[str, int]:
    """Each role's metrics port (the worker's: the base of its processes' ports)."""
    if settings.metrics_port == 0:
        return dict.fromkeys(roles, 0)
    if settings.metrics_port is None:
        ports = {role: DEFAULT_PORTS[METRICS_ROLE.get(role, role)] for role in roles}
        if "worker" in ports and workers > 1:
            ports["worker"] = WORKER_CHILDREN_BASE
        return ports
    ports, port = {}, settings.metrics_port
    for role in sorted(roles, key=lambda role: role != "worker"):
        ports[role] = port
        port += workers if role == "worker" else 1
    return ports


def describe(ports: dict[str, int], workers: int) -> str:
    """``worker :9401, sink :9402, …`` for ``beat up``'s banner."""
    shown = []
    for role, port in ports.items():
        if port == 0:
            shown.append(f"{role} (a free port, in its log)")
        elif role == "worker" and workers > 1:
            shown.append(f"worker :{port}-{port + workers - 1}")
        else:
            shown.append(f"{role} :{port}")
    return ", ".join(shown)
