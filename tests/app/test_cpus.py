"""The usable CPU count: affinity capped by a cgroup v2 or v1 quota, read from fake cgroup trees."""

from __future__ import annotations

import os
from pathlib import Path

from app.cpus import cgroup_cpu_quota, usable_cpu_count


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_v2_quota_is_rounded_up(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "150000 100000")
    assert cgroup_cpu_quota(tmp_path, "0::/\n") == 1.5
    membership = tmp_path / "self"
    _write(membership, "0::/")
    assert usable_cpu_count(tmp_path, membership) == min(_affinity(), 2)


def test_v2_without_a_quota_leaves_the_affinity(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000")
    membership = tmp_path / "self"
    _write(membership, "0::/")
    assert cgroup_cpu_quota(tmp_path, "0::/") is None
    assert usable_cpu_count(tmp_path, membership) == _affinity()


def test_v2_the_tightest_ancestor_binds(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000")
    _write(tmp_path / "kube" / "cpu.max", "300000 100000")
    _write(tmp_path / "kube" / "pod" / "cpu.max", "max 100000")
    assert cgroup_cpu_quota(tmp_path, "0::/kube/pod") == 3.0


def test_v1_cfs_quota_under_a_joined_mount(tmp_path: Path) -> None:
    _write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "50000")
    _write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000")
    membership = "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/"
    assert cgroup_cpu_quota(tmp_path, membership) == 0.5
    _write(tmp_path / "self", membership)
    # Half a CPU is still one process.
    assert usable_cpu_count(tmp_path, tmp_path / "self") == 1


def test_v1_no_quota_and_a_host_path_that_is_not_mounted(tmp_path: Path) -> None:
    # Without a cgroup namespace /proc/self/cgroup names the host's path; only the mount's root exists.
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota(tmp_path, "1:cpu:/host/slice") is None
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "200000")
    assert cgroup_cpu_quota(tmp_path, "1:cpu:/host/slice") == 2.0


def test_nothing_readable_means_the_affinity(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path, "") is None
    assert usable_cpu_count(tmp_path, tmp_path / "missing") == _affinity()
