"""The sandbox's mutable runtime: the current knobs and the traffic bookkeeping they act on."""

from __future__ import annotations

import random

from providers.sandbox.config import SandboxConfig
from providers.sandbox.traffic import SlidingLog, TrafficStats


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.log = SlidingLog()
        self.stats = TrafficStats()

    def replace(self, config: SandboxConfig) -> None:
        """New knobs; arrivals already logged still count against the new limits."""
        self.config = config
        self.rng = random.Random(config.seed)

    def reset(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.log.clear()
        self.stats.clear()
