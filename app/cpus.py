"""How many CPUs this process may really use: its affinity, capped by its cgroup's CPU quota.

``os.cpu_count()`` counts the host's CPUs. In a container limited to two CPUs on a 64-core host it says 64,
and 64 worker processes would share two CPUs' worth of time slices: more rebalancing, more memory, no
more work done. The quota is cgroup v2's ``cpu.max`` ("quota period" or "max period") or cgroup v1's
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none), on the process's own cgroup and every ancestor
up to the mount, since a parent's quota binds its children too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cpu_count(cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int:
    """The CPUs this process may run on (affinity), capped by the cgroup quota rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        membership = self_cgroup.read_text()
    except OSError:
        membership = ""
    quota = cgroup_cpu_quota(cgroup_root, membership)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(cgroup_root: Path, membership: str) -> float | None:
    """The tightest CPU quota (in CPUs) on the cgroups named by ``membership`` (the text of
    /proc/self/cgroup) under ``cgroup_root``, or None when none is set or none can be read."""
    quotas: list[float] = []
    for line in membership.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == "0" and controllers == "":
            quotas += filter(None, (_v2_quota(d) for d in _up_to(cgroup_root, path)))
        elif "cpu" in controllers.split(","):
            quotas += filter(None, (_v1_quota(d) for d in _up_to(cgroup_root / controllers, path)))
    return min(quotas, default=None)


def _up_to(mount: Path, path: str) -> list[Path]:
    """The cgroup directory of ``path`` under ``mount`` and each of its ancestors up to the mount. Inside a
    container without a cgroup namespace the path names the host's hierarchy, and only the mount exists."""
    parts = [part for part in path.split("/") if part]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return _ratio(quota, period)


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = (directory / "cpu.cfs_quota_us").read_text().strip()
        period = (directory / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:  # -1 is cgroup v1's "no quota"
        return None
    return quota_us / period_us
