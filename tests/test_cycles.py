"""find_cycles: capture what the collector frees, group it, restore gc state."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from _support import run_python

from leakscope.cycles import CycleReport, find_cycles


class Node:
    def __init__(self, parent: Node | None = None) -> None:
        self.parent = parent
        self.children: list[Node] = []
        if parent is not None:
            parent.children.append(self)


class Finalized:
    def __del__(self) -> None:
        pass


_SAVED: list[object] = []


class Zombie:
    def __del__(self) -> None:
        _SAVED.append(self)


def test_identical_cycles_are_aggregated() -> None:
    def build() -> None:
        for _ in range(500):
            Node(Node())

    report = find_cycles(build)
    assert report.total == 500
    (cycle,) = report.cycles
    assert cycle.count == 500
    assert cycle.title == "Node <-> Node"
    assert cycle.text == "Node.children[0] -> Node.parent -> Node"
    assert (f"{__name__}.Node", 2) in cycle.types
    assert not report.has_finalizers
    assert "500 cycles" in str(report)
    assert CycleReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_finalizer_cycles_are_found_although_gc_garbage_stays_empty() -> None:
    def build() -> None:
        a, b = Finalized(), Finalized()
        a.other, b.other = b, a

    report = find_cycles(build)
    (cycle,) = report.cycles
    assert cycle.has_finalizer and report.has_finalizers
    assert cycle.text == "Finalized.other -> Finalized.other -> Finalized"
    assert "[has __del__]" in str(report)
    assert gc.garbage == []


def test_resurrection_is_reported() -> None:
    def build() -> None:
        z = Zombie()
        z.me = z

    try:
        report = find_cycles(build)
        assert report.resurrected == (f"{__name__}.Zombie",)
        assert "resurrected by __del__" in str(report)
    finally:
        _SAVED.clear()


def test_closures_bound_methods_tracebacks_and_dicts() -> None:
    class Widget:
        def on_click(self) -> None:
            pass

    def build() -> None:
        def outer() -> None:
            handlers: list[object] = []

            def handler() -> object:
                return handlers

            handlers.append(handler)

        outer()
        w = Widget()
        w.callback = w.on_click
        try:
            raise ValueError("boom")
        except ValueError as exc:
            err = exc  # the frame keeps the exception: exception -> traceback -> frame
        assert err is not None
        holder: dict[str, object] = {}
        holder["self"] = holder

    report = find_cycles(build)
    texts = {c.text for c in report.cycles}
    assert "function.__closure__[0].cell_contents[0] -> function" in texts
    assert "Widget.callback -> method.__self__ -> Widget" in texts
    assert (
        "ValueError.__traceback__ -> traceback.tb_frame -> frame.f_locals['err'] -> ValueError"
        in texts
    )
    assert "dict['self'] -> dict" in texts


def test_long_chain_cycle_needs_no_recursion() -> None:
    class Link:
        pass

    def build() -> None:
        first = cur = Link()
        for _ in range(100_000):
            nxt = Link()
            cur.next = nxt
            cur = nxt
        cur.next = first

    report = find_cycles(build)
    (cycle,) = report.cycles
    assert cycle.size >= 100_001
    assert cycle.hops >= 100_001
    assert "more references" in cycle.text
    assert cycle.title.endswith("-object cycle")


def test_no_func_examines_current_garbage() -> None:
    a = Node()
    Node(a)
    del a
    report = find_cycles()
    assert report.total >= 1
    assert find_cycles().total == 0  # the first call freed them


def test_to_dot() -> None:
    def build() -> None:
        Node(Node())

    dot = find_cycles(build).to_dot()
    assert dot.startswith("digraph cycles {")
    assert "Node <-> Node" in dot and "children" in dot


def test_not_callable_is_rejected() -> None:
    with pytest.raises(TypeError, match="callable"):
        find_cycles(42)  # type: ignore[arg-type]


def test_gc_state_is_restored_even_on_error_in_a_fresh_interpreter() -> None:
    out = run_python(
        """
        import gc, json
        from leakscope.cycles import find_cycles

        class Legacy:
            pass

        keep = Legacy()
        gc.garbage.append(keep)
        garbage = gc.garbage
        def cb(phase, info):
            pass
        gc.callbacks.append(cb)
        gc.disable()
        gc.set_debug(gc.DEBUG_STATS & 0)
        gc.set_threshold(1234, 5, 6)

        def boom():
            a = []; a.append(a)
            raise KeyError("x")

        try:
            find_cycles(boom)
        except KeyError:
            pass
        report = find_cycles()
        print(json.dumps({
            "same_list": gc.garbage is garbage,
            "items": gc.garbage == [keep] and gc.garbage[0] is keep,
            "enabled": gc.isenabled(),
            "debug": gc.get_debug(),
            "threshold": list(gc.get_threshold()),
            "callbacks": gc.callbacks == [cb],
            "uncollectable": list(report.uncollectable),
        }))
        """
    )
    data = json.loads(out.strip().splitlines()[-1])
    assert data == {
        "same_list": True,
        "items": True,
        "enabled": False,
        "debug": 0,
        "threshold": [1234, 5, 6],
        "callbacks": True,
        "uncollectable": ["__main__.Legacy"],
    }


@pytest.mark.parametrize("python", ["3.10.13", "3.12.1", "3.13.0"])
def test_other_versions(python: str) -> None:
    exe = Path.home() / ".pyenv" / "versions" / python / "bin" / "python"
    if not exe.exists():
        pytest.skip(f"Python {python} not installed")
    out = run_python(
        """
        import gc, json
        from leakscope.cycles import find_cycles
        saved = []
        class Node:
            def __init__(self, parent=None):
                self.parent = parent; self.children = []
                if parent: parent.children.append(self)
        class Zombie:
            def __del__(self): saved.append(self)
        def build():
            for _ in range(50): Node(Node())
            z = Zombie(); z.me = z
        r = find_cycles(build)
        print(json.dumps([[c.text, c.count] for c in r.cycles] + [list(r.resurrected)]))
        """,
        python=str(exe),
    )
    data = json.loads(out.strip().splitlines()[-1])
    assert data == [["Node.children[0] -> Node.parent -> Node", 50], ["__main__.Zombie"]]
