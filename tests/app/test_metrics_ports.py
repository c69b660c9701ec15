"""The metrics ports `beat up` and `beat worker --processes N` hand out."""

from __future__ import annotations

from app.metrics_ports import describe, up_metrics_ports
from core.health import metrics_port
from core.settings import load_settings

ROLES = ["sink", "worker", "mirror", "api"]


def test_beat_up_uses_each_roles_default_and_moves_a_worker_of_several_processes_clear():
    settings = load_settings()
    assert up_metrics_ports(settings, ROLES, 1) == {"sink": 9402, "worker": 9401, "mirror": 9403, "api": 9405}
    assert up_metrics_ports(settings, ["listen"], 1) == {"listen": 9404}
    ports = up_metrics_ports(settings, ROLES, 3)
    assert ports["worker"] == 9411
    # The children's ports (base + index from 0) meet no other role's.
    children = {
        metrics_port(settings.model_copy(update={"metrics_port": ports["worker"]}), "worker", i) for i in range(3)
    }
    assert children == {9411, 9412, 9413} and not children & {ports[role] for role in ROLES if role != "worker"}
    assert describe(ports, 3) == "sink :9402, worker :9411-9413, mirror :9403, api :9405"


def test_a_base_numbers_the_roles_from_it_and_zero_frees_them_all():
    assert up_metrics_ports(load_settings(metrics_port=9500), ROLES, 2) == {
        "worker": 9500,
        "sink": 9502,
        "mirror": 9503,
        "api": 9504,
    }
    free = up_metrics_ports(load_settings(metrics_port=0), ROLES, 2)
    assert set(free.values()) == {0}
    assert describe(free, 2).startswith("sink (a free port, in its log)")
