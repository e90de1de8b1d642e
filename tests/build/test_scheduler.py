"""The scheduler core with plain string ids. Arrows point from a task to what it waits on."""

from __future__ import annotations

import pytest

from stardag.build._scheduler import DONE, FAILED, READY, RUNNING, UPSTREAM_FAILED, WAITING, Scheduler


def drain(s: Scheduler) -> list[str]:
    """Pop every ready id (each is now running)."""
    out = []
    while (task_id := s.pop_ready()) is not None:
        out.append(task_id)
    return out


def test_a_chain_runs_bottom_up() -> None:
    """
    c -> b -> a
    """
    s = Scheduler()
    assert s.add("a", []) == READY
    assert s.add("b", ["a"]) == WAITING
    assert s.add("c", ["b"]) == WAITING
    assert len(s) == 3 and "b" in s and "z" not in s
    assert drain(s) == ["a"]
    assert s.pop_ready() is None and not s.has_ready()
    s.done("a")
    assert drain(s) == ["b"]
    s.done("b")
    assert drain(s) == ["c"]
    assert s.n_unfinished == 1
    s.done("c")
    assert s.n_unfinished == 0 and s.state("c") == DONE


def test_a_diamond_releases_the_join_only_when_both_sides_are_done() -> None:
    """
        d
       / \\
      b   c
       \\ /
        a
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", ["a"])
    s.add("c", ["a"])
    s.add("d", ["b", "c"])
    assert drain(s) == ["a"]
    s.done("a")
    assert drain(s) == ["b", "c"]
    s.done("c")
    assert drain(s) == [] and s.state("d") == WAITING
    s.done("b")
    assert drain(s) == ["d"] and s.state("d") == RUNNING


def test_each_ready_id_is_handed_out_once_in_fifo_order() -> None:
    """
    a   b   c   d     (independent)
    """
    s = Scheduler()
    for task_id in "abcd":
        s.add(task_id, [])
    assert s.pop_ready() == "a"
    assert drain(s) == ["b", "c", "d"]
    assert s.pop_ready() is None


def test_a_task_added_on_done_dependencies_is_ready_at_once() -> None:
    """
    b -> a (done before b is added)
    """
    s = Scheduler()
    s.add("a", [])
    drain(s)
    s.done("a")
    assert s.add("b", ["a"]) == READY
    assert drain(s) == ["b"]


def test_failure_marks_everything_downstream_once() -> None:
    """
      e     f
      |    / \\
      d   /   c
       \\ /    |
        b ----+
        |
        a  (fails)
    d -> b, f -> b, f -> c, c -> b; e -> d. a fails: b, c, d, e, f are upstream-failed.
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", ["a"])
    s.add("c", ["b"])
    s.add("d", ["b"])
    s.add("e", ["d"])
    s.add("f", ["b", "c"])
    drain(s)
    marked = s.failed("a")
    assert sorted(marked) == ["b", "c", "d", "e", "f"]
    assert s.state("a") == FAILED
    assert all(s.state(t) == UPSTREAM_FAILED for t in "bcdef")
    assert s.n_upstream_failed == 5 and s.n_unfinished == 0
    assert drain(s) == []


def test_a_join_of_two_failures_is_counted_once() -> None:
    """
        c
       / \\
      a   b   (both fail)
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", [])
    s.add("c", ["a", "b"])
    drain(s)
    assert s.failed("a") == ["c"]
    assert s.failed("b") == []
    assert s.n_upstream_failed == 1 and s.n_unfinished == 0


def test_failure_leaves_independent_branches_alone() -> None:
    """
    c -> a (fails)      d -> b
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", [])
    s.add("c", ["a"])
    s.add("d", ["b"])
    drain(s)
    assert s.failed("a") == ["c"]
    s.done("b")
    assert drain(s) == ["d"]


def test_adding_on_a_failed_dependency_is_upstream_failed_at_once() -> None:
    """
    b -> a (failed before b is added)
    """
    s = Scheduler()
    s.add("a", [])
    drain(s)
    s.failed("a")
    assert s.add("b", ["a"]) == UPSTREAM_FAILED
    assert s.n_upstream_failed == 1 and s.n_unfinished == 0


def test_extend_makes_a_running_task_wait_again() -> None:
    """
    t (running) ··> x, y    (yielded while t runs)
    """
    s = Scheduler()
    s.add("t", [])
    assert drain(s) == ["t"]
    s.add("x", [])
    s.add("y", [])
    assert s.extend("t", ["x", "y"]) == WAITING
    assert drain(s) == ["x", "y"]
    s.done("x")
    assert drain(s) == []
    s.done("y")
    assert drain(s) == ["t"]
    s.done("t")
    assert s.n_unfinished == 0


def test_extend_on_done_dependencies_is_ready_again_at_once() -> None:
    """
    t (running) ··> x (done)
    """
    s = Scheduler()
    s.add("x", [])
    drain(s)
    s.done("x")
    s.add("t", [])
    drain(s)
    assert s.extend("t", ["x"]) == READY
    assert drain(s) == ["t"]


def test_extend_on_a_failed_dependency_fails_the_task_and_its_dependents() -> None:
    """
    u -> t (running) ··> x (failed)
    """
    s = Scheduler()
    s.add("x", [])
    s.add("t", [])
    s.add("u", ["t"])
    drain(s)
    s.failed("x")
    assert s.extend("t", ["x"]) == UPSTREAM_FAILED
    assert s.state("u") == UPSTREAM_FAILED
    assert s.n_upstream_failed == 2 and s.n_unfinished == 0


def test_misuse_raises_value_error_naming_the_task() -> None:
    """
    b -> a
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", ["a"])
    with pytest.raises(ValueError, match="'a' was already added"):
        s.add("a", [])
    with pytest.raises(ValueError, match="'b' is not running"):
        s.done("b")
    with pytest.raises(ValueError, match="'b' is not running"):
        s.failed("b")
    with pytest.raises(ValueError, match="'b' is not running"):
        s.extend("b", ["a"])
    drain(s)
    s.done("a")
    with pytest.raises(ValueError, match="'a' is not running"):
        s.done("a")
    with pytest.raises(KeyError):
        s.add("c", ["unknown"])


def test_cancel_returns_what_has_not_started() -> None:
    """
    c -> a      d -> b      e (ready, not popped)
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", [])
    s.add("c", ["a"])
    s.add("d", ["b"])
    assert s.pop_ready() == "a"
    s.add("e", [])
    assert sorted(s.cancel()) == ["b", "c", "d", "e"]
    assert s.pop_ready() is None
    s.done("a")  # the running task may still finish


def test_find_cycle_through_extend() -> None:
    """
    a ··> b -> c -> a     (a yields b while running; b waits on c, c on a)
    """
    s = Scheduler()
    s.add("a", [])
    drain(s)
    s.add("c", ["a"])
    s.add("b", ["c"])
    assert s.find_cycle() is None
    s.extend("a", ["b"])
    assert drain(s) == []
    cycle = s.find_cycle()
    assert cycle is not None
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["a", "b", "c"]
    # Each id waits on the next.
    waits = {("a", "b"), ("b", "c"), ("c", "a")}
    assert set(zip(cycle, cycle[1:])) == waits


def test_find_cycle_ignores_finished_tasks() -> None:
    """
    c -> b -> a (done); d    (no cycle)
    """
    s = Scheduler()
    s.add("a", [])
    s.add("b", ["a"])
    s.add("c", ["b"])
    s.add("d", [])
    drain(s)
    s.done("a")
    assert s.find_cycle() is None


def test_a_100000_long_cycle_is_found_without_recursion() -> None:
    """
    n0 -> n1 -> ... -> n99999 ··> n0     (n99999 yields n0 while running)
    """
    n = 100_000
    s = Scheduler()
    s.add(f"n{n - 1}", [])
    for i in range(n - 2, -1, -1):
        s.add(f"n{i}", [f"n{i + 1}"])
    assert drain(s) == [f"n{n - 1}"]
    s.extend(f"n{n - 1}", ["n0"])
    cycle = s.find_cycle()
    assert cycle is not None and len(cycle) == n + 1 and cycle[0] == cycle[-1]


def test_a_100000_deep_chain_is_processed_without_recursion() -> None:
    """
    n99999 -> ... -> n1 -> n0
    """
    n = 100_000
    s = Scheduler()
    s.add("n0", [])
    for i in range(1, n):
        s.add(f"n{i}", [f"n{i - 1}"])
    order = []
    while (task_id := s.pop_ready()) is not None:
        order.append(task_id)
        s.done(task_id)
    assert len(order) == n and order[-1] == f"n{n - 1}"
    # Failure propagation down a chain is an explicit walk as well.
    s2 = Scheduler()
    s2.add("n0", [])
    for i in range(1, n):
        s2.add(f"n{i}", [f"n{i - 1}"])
    drain(s2)
    assert len(s2.failed("n0")) == n - 1


class _CountingDict(dict):
    """A dict that counts whole-table walks."""

    walks = 0

    def values(self):
        type(self).walks += 1
        return super().values()

    def items(self):
        type(self).walks += 1
        return super().items()

    def keys(self):
        type(self).walks += 1
        return super().keys()

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


def test_no_step_walks_all_tasks() -> None:
    """
    hub -> leaf0, leaf1, ..., leaf4999;   top_i -> hub for i < 5000
    """
    s = Scheduler()
    s._nodes = _CountingDict()
    _CountingDict.walks = 0
    n = 5000
    for i in range(n):
        s.add(f"leaf{i}", [])
    s.add("hub", [f"leaf{i}" for i in range(n)])
    for i in range(n):
        s.add(f"top{i}", ["hub"])
    while (task_id := s.pop_ready()) is not None:
        s.done(task_id)
    assert s.n_unfinished == 0
    assert _CountingDict.walks == 0
