"""A plan's dependency graph: order, levels, cycles and ancestors, on the standard library's graphlib.

Every function takes ``deps``: each step id, in plan order, mapped to the ids it depends on.
Edges to ids that are not keys are ignored (the validator reports them as unknown
dependencies), and so are repeated edges. A self-edge is a cycle of one step (``a -> a``).
On a graph with a cycle, :func:`order`, :func:`levels` and the ancestor functions cover the
steps that can still be ordered: those neither in a cycle nor downstream of one.
Ties are always broken by plan order, so the same plan gives the same answer everywhere.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

Deps = Mapping[str, Sequence[str]]


def _sorter(deps: Deps) -> tuple[TopologicalSorter[str], list[str] | None]:
    """A prepared sorter over the known edges, and graphlib's raw cycle (None: acyclic)."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for sid, parents in deps.items():
        sorter.add(sid, *[p for p in parents if p in deps])
    try:
        sorter.prepare()
    except CycleError as exc:  # get_ready still hands out every step outside and before the cycle
        return sorter, list(exc.args[1])
    return sorter, None


def _batches(deps: Deps) -> Iterator[tuple[str, ...]]:
    """graphlib's batches of ready steps, in no particular order within a batch.

    A step becomes ready in the round after its last (deepest) dependency is done, so each
    batch is exactly one level.
    """
    sorter, _ = _sorter(deps)
    ready = sorter.get_ready()
    while ready:
        yield ready
        sorter.done(*ready)
        ready = sorter.get_ready()


def levels(deps: Deps) -> list[list[str]]:
    """Steps by level: level 1 has no dependencies, a step is one level after its deepest one."""
    position = {sid: i for i, sid in enumerate(deps)}
    return [sorted(batch, key=position.__getitem__) for batch in _batches(deps)]


def order(deps: Deps) -> list[str]:
    """A topological order that always takes the earliest ready step in plan order.

    A plan already written in dependency order comes back unchanged.
    """
    names = list(deps)
    position = {sid: i for i, sid in enumerate(names)}
    sorter, _ = _sorter(deps)
    ready = [position[sid] for sid in sorter.get_ready()]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        sid = names[heapq.heappop(ready)]
        result.append(sid)
        sorter.done(sid)
        for child in sorter.get_ready():
            heapq.heappush(ready, position[child])
    return result


def cycle_path(deps: Deps) -> list[str] | None:
    """One dependency cycle as a path ``a -> b -> a`` (each step depends on the one before), or None.

    graphlib finds the cycle (deterministic for a given plan order); it is rotated to start at
    its smallest id, so the path does not depend on where the search entered it.
    """
    _, found = _sorter(deps)
    if found is None:
        return None
    loop = found[:-1]  # graphlib repeats the first step at the end
    start = loop.index(min(loop))
    loop = loop[start:] + loop[:start]
    return [*loop, loop[0]]


def ancestors(deps: Deps) -> dict[str, set[str]]:
    """All transitive dependencies of each orderable step."""
    found: dict[str, set[str]] = {}
    for level in _batches(deps):
        for sid in level:
            mine: set[str] = set()
            for parent in deps[sid]:
                if parent in found:  # unknown ids are not; every known dependency is placed already
                    mine.add(parent)
                    mine |= found[parent]
            found[sid] = mine
    return found


def ancestor_bits(deps: Deps) -> dict[str, int]:
    """:func:`ancestors` as bitmasks (bit ``i``: the ``i``-th step of ``deps``), for membership tests.

    Sets would hold ~500,000 ids for a 1,000-step chain-like plan; one int per step stays cheap.
    """
    bit = {sid: 1 << i for i, sid in enumerate(deps)}
    found: dict[str, int] = {}
    for level in _batches(deps):
        for sid in level:
            mask = 0
            for parent in deps[sid]:
                if parent in found:
                    mask |= found[parent] | bit[parent]
            found[sid] = mask
    return found


__all__ = ["Deps", "ancestor_bits", "ancestors", "cycle_path", "levels", "order"]
