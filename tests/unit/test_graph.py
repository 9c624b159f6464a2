"""plan.graph: orders, levels, cycles and ancestors, checked against plain reference versions."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from airflow_claude.plan import graph

Deps = dict[str, list[str]]

DIAMOND: Deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def _random_dag(rng: random.Random, size: int) -> Deps:
    """Steps in a shuffled plan order; each depends on a few steps that come earlier in a hidden order."""
    hidden = [f"n{i}" for i in range(size)]
    deps = {sid: rng.sample(hidden[:i], k=min(i, rng.randint(0, 3))) for i, sid in enumerate(hidden)}
    listed = list(deps)
    rng.shuffle(listed)
    return {sid: deps[sid] for sid in listed}


def _reference_depth(deps: Deps) -> dict[str, int]:
    depth: dict[str, int] = {}

    def walk(sid: str) -> int:
        if sid not in depth:
            depth[sid] = 1 + max((walk(p) for p in deps[sid]), default=0)
        return depth[sid]

    for sid in deps:
        walk(sid)
    return depth


def _reference_ancestors(deps: Deps, sid: str) -> set[str]:
    found: set[str] = set()
    todo = list(deps[sid])
    while todo:
        parent = todo.pop()
        if parent not in found:
            found.add(parent)
            todo.extend(deps[parent])
    return found


def test_diamond() -> None:
    assert graph.order(DIAMOND) == ["a", "b", "c", "d"]
    assert graph.levels(DIAMOND) == [["a"], ["b", "c"], ["d"]]
    assert graph.cycle_path(DIAMOND) is None
    assert graph.ancestors(DIAMOND) == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"a", "b", "c"}}
    assert graph.ancestor_bits(DIAMOND) == {"a": 0, "b": 0b1, "c": 0b1, "d": 0b111}


def test_order_keeps_plan_order_among_ready_steps() -> None:
    deps: Deps = {"report": ["load"], "load": [], "audit": [], "mail": ["report", "audit"]}
    assert graph.order(deps) == ["load", "report", "audit", "mail"]
    assert graph.levels(deps) == [["load", "audit"], ["report"], ["mail"]]
    written_in_order = {"a": [], "b": [], "c": ["a"], "d": ["c", "b"]}
    assert graph.order(written_in_order) == list(written_in_order)


def test_a_step_is_one_level_after_its_deepest_dependency() -> None:
    deps: Deps = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"], "e": ["a"]}
    assert graph.levels(deps) == [["a"], ["b", "e"], ["c"], ["d"]]


def test_empty_and_single() -> None:
    assert graph.order({}) == [] and graph.levels({}) == [] and graph.ancestors({}) == {}
    assert graph.cycle_path({}) is None
    assert graph.levels({"only": []}) == [["only"]]


def test_unknown_ids_and_repeated_edges_are_ignored() -> None:
    deps: Deps = {"a": ["ghost"], "b": ["a", "a", "phantom"]}
    assert graph.order(deps) == ["a", "b"]
    assert graph.levels(deps) == [["a"], ["b"]]
    assert graph.ancestors(deps) == {"a": set(), "b": {"a"}}
    assert graph.cycle_path(deps) is None


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"b": ["a"], "a": ["b"]}, ["a", "b", "a"]),
        # a -> b -> c -> a: b depends on a, c on b, a on c; d hangs below the cycle
        ({"a": ["c"], "b": ["a"], "c": ["b"], "d": ["a"]}, ["a", "b", "c", "a"]),
        ({"tail": ["y"], "z": ["y"], "y": ["x"], "x": ["z"]}, ["x", "y", "z", "x"]),
        ({"ok": [], "m": ["ok", "n"], "n": ["m"]}, ["m", "n", "m"]),
    ],
)
def test_cycle_path_starts_at_the_smallest_id(deps: Deps, cycle: list[str]) -> None:
    assert graph.cycle_path(deps) == cycle


def test_a_long_cycle_is_one_path_of_real_edges() -> None:
    ring = [f"s{i:03d}" for i in range(500)]
    deps: Deps = {sid: [ring[i - 1]] for i, sid in enumerate(ring)}  # s000 depends on s499
    listed = list(deps)
    random.Random(7).shuffle(listed)
    path = graph.cycle_path({sid: deps[sid] for sid in listed})
    assert path is not None and len(path) == 501
    assert path[0] == path[-1] == "s000"
    assert all(before in deps[after] for before, after in pairwise(path))


def test_with_a_cycle_only_the_steps_before_it_are_placed() -> None:
    deps: Deps = {"load": [], "a": ["load", "b"], "b": ["a"], "after": ["a"], "free": ["load"]}
    assert graph.cycle_path(deps) == ["a", "b", "a"]
    assert graph.order(deps) == ["load", "free"]
    assert graph.levels(deps) == [["load"], ["free"]]
    assert graph.ancestors(deps) == {"load": set(), "free": {"load"}}


def test_ancestors_of_a_deep_chain_need_no_recursion() -> None:
    chain: Deps = {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(3000)}
    found = graph.ancestors(chain)
    assert len(found["s2999"]) == 2999 and found["s0"] == set()
    assert len(graph.levels(chain)) == 3000


@pytest.mark.parametrize("seed", range(40))
def test_random_dags_match_reference_versions(seed: int) -> None:
    rng = random.Random(seed)
    deps = _random_dag(rng, rng.randint(1, 60))
    position = {sid: i for i, sid in enumerate(deps)}

    order = graph.order(deps)
    assert sorted(order) == sorted(deps)
    seen: set[str] = set()
    for sid in order:
        assert set(deps[sid]) <= seen
        seen.add(sid)

    depth = _reference_depth(deps)
    levels = graph.levels(deps)
    assert [sid for level in levels for sid in level] == sorted(deps, key=lambda s: (depth[s], position[s]))
    assert all(depth[sid] == n for n, level in enumerate(levels, 1) for sid in level)

    ancestors = graph.ancestors(deps)
    bits = graph.ancestor_bits(deps)
    for sid in deps:
        assert ancestors[sid] == _reference_ancestors(deps, sid)
        assert bits[sid] == sum(1 << position[a] for a in ancestors[sid])
    assert graph.cycle_path(deps) is None


@pytest.mark.parametrize("seed", range(20))
def test_answers_are_deterministic(seed: int) -> None:
    rng = random.Random(seed)
    deps = _random_dag(rng, 40)
    victim = rng.choice([sid for sid, parents in deps.items() if parents])
    closing = next(sid for sid in deps if victim in _reference_ancestors(deps, sid) or sid == victim)
    cyclic = {**deps, deps[victim][0]: [*deps[deps[victim][0]], closing]}  # the dependency now waits for a dependant
    for subject in (deps, cyclic):
        first = (graph.order(subject), graph.levels(subject), graph.cycle_path(subject), graph.ancestors(subject))
        again = {sid: list(parents) for sid, parents in subject.items()}
        assert (graph.order(again), graph.levels(again), graph.cycle_path(again), graph.ancestors(again)) == first
    path = graph.cycle_path(cyclic)
    assert path is not None and path[0] == min(path)
    assert all(before in cyclic[after] for before, after in pairwise(path))
