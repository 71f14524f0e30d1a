"""Overlap resolution of detector finds, in O(f log f + covered length).

Rule (unchanged since the first engine): on a clash the higher priority wins, then the longer
span, then the earlier one. Finds rarely overlap, so the finds are sorted by position and only
clusters of overlapping ones are resolved; within a cluster a coverage bytearray answers "is
any of this span already taken?" at C speed. Each detector's own finds never overlap, so the
bytes looked at add up to at most (number of detectors) x (text length): linear, whatever the
input.
"""

from __future__ import annotations

from operator import le

Find = tuple[int, int, int, str]
"""``(start, end, priority, kind)``."""

Span = tuple[int, int, str]
"""``(start, end, kind)`` of one find, end exclusive."""

_SMALL_CLUSTER = 4  # below this, pairwise checks beat allocating a coverage array


def resolve(found: list[Find]) -> list[Find]:
    """The finds that survive overlap resolution, sorted by start."""
    found.sort()
    if len(found) < 2:
        return found
    starts, ends, _, _ = zip(*found, strict=True)
    if all(map(le, ends[:-1], starts[1:])):  # the common case: nothing overlaps
        return found
    clusters: list[list[Find]] = []
    end = -1
    current: list[Find] = []
    for find in found:
        if find[0] >= end:
            if current:
                clusters.append(current)
            current = [find]
        else:
            current.append(find)
        end = max(end, find[1])
    if current:
        clusters.append(current)
    out: list[Find] = []
    for cluster in clusters:
        if len(cluster) == 1:
            out.append(cluster[0])
        else:
            out += _resolve_cluster(cluster)
    return out


def _order(find: Find) -> tuple[int, int, int]:
    return (-find[2], find[0] - find[1], find[0])


def _resolve_cluster(cluster: list[Find]) -> list[Find]:
    ranked = sorted(cluster, key=_order)
    chosen: list[Find] = []
    if len(cluster) < _SMALL_CLUSTER:
        for find in ranked:
            start, end = find[0], find[1]
            if all(end <= c[0] or start >= c[1] for c in chosen):
                chosen.append(find)
    else:
        base = cluster[0][0]
        cover = bytearray(max(f[1] for f in cluster) - base)
        for find in ranked:
            start, end = find[0] - base, find[1] - base
            if cover.find(1, start, end) == -1:
                cover[start:end] = b"\x01" * (end - start)
                chosen.append(find)
    chosen.sort()
    return chosen
