"""Shared timing helper for the benchmarks: best-of-N wall time per call."""

from __future__ import annotations

import time
from collections.abc import Callable

# The scope every benchmark's events carry; each adds the correlation fields it needs.
BENCH_SCOPE = {
    "tenant_id": "t_bench",
    "env": "prod",
    "project_id": "p_bench",
    "surface_id": "chat",
    "app_id": "bench",
}


def per_call_seconds(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best (lowest) mean seconds per call over ``repeat`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def line(name: str, value: float, unit: str, note: str = "") -> None:
    """One figure per line: ``name: value unit  (note)``."""
    print(f"{name}: {value:,.1f} {unit}" + (f"  ({note})" if note else ""))
