"""The README's flow status table says what the registry says."""

from __future__ import annotations

import re

from tests.support import ROOT
from topics.flows import FLOWS


def test_flow_status_table_matches_the_registry():
    rows = re.findall(
        r"^\| `(\w+)` \| (\w+) \| (\d+) \| (enabled|disabled)", (ROOT / "README.md").read_text(), re.MULTILINE
    )
    table = {name: (platform, int(concurrency), state == "enabled") for name, platform, concurrency, state in rows}
    registry = {s.name: (s.platform.value.lower(), s.concurrency, s.enabled) for s in FLOWS.values()}
    assert table == registry
