"""``beat sources``' drift section: what the workers' parsers found missing or unknown in provider answers.

Each worker keeps its findings in memory (``providers/drift.py``) and serves them at ``/drift`` on its
metrics port; this asks each given port and merges the answers per source and operation.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx

# A worker's metrics port answers from a thread of its own: a second is plenty on any network it is on.
TIMEOUT = 2.0


def collect(urls: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The findings of every worker that answered, merged; and the URLs that did not answer."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    silent = []
    for url in urls:
        try:
            answer = httpx.get(f"{url.rstrip('/')}/drift", timeout=TIMEOUT)
            answer.raise_for_status()
            findings = answer.json()
        except (httpx.HTTPError, ValueError):
            silent.append(url)
            continue
        for finding in findings:
            key = (finding["source"], finding["operation"])
            into = merged.setdefault(
                key, {"answers": 0, "missing": defaultdict(int), "unknown": defaultdict(int), "last_at": None}
            )
            into["answers"] += finding["answers"]
            for kind in ("missing", "unknown"):
                for name, count in finding[kind].items():
                    into[kind][name] += count
            into["last_at"] = max(filter(None, (into["last_at"], finding["last_at"])), default=None)
    rows = [
        {"source": source, "operation": operation, **found} for (source, operation), found in sorted(merged.items())
    ]
    return rows, silent


def drift_lines(urls: list[str]) -> list[str]:
    rows, silent = collect(urls)
    lines = []
    if rows:
        lines.append(f"{'source':<22} {'operation':<28} {'answers':>7}  missing / unknown fields")
        for row in rows:
            missing = ", ".join(f"{name} ({count})" for name, count in sorted(row["missing"].items())) or "-"
            unknown = ", ".join(f"{name} ({count})" for name, count in sorted(row["unknown"].items())) or "-"
            found = f"missing: {missing}; unknown: {unknown}"
            lines.append(f"{row['source']:<22} {row['operation']:<28} {row['answers']:>7}  {found}")
    elif len(silent) < len(urls):
        lines.append("no drift: every answer had the fields its parser expects, and no other")
    if silent:
        lines.append(f"drift unknown for the workers at {', '.join(silent)}: no answer from their metrics port")
    return lines
