"""why_alive, assert_collected, expect_collected, sizeof."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import types
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import run_python

from leakscope.errors import LeakError, LeakscopeError
from leakscope.retention import (
    Retention,
    Size,
    assert_collected,
    expect_collected,
    sizeof,
    why_alive,
)


class User:
    pass


class Hostile:
    """Every hook a diagnostic tool might call raises once armed."""

    armed = False

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ called")

    def __hash__(self) -> int:
        if Hostile.armed:
            raise RuntimeError("__hash__ called")
        return 7

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ called")

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"__getattr__({name}) called")

    def __getattribute__(self, name: str) -> object:
        if Hostile.armed:
            raise RuntimeError(f"__getattribute__({name}) called")
        return object.__getattribute__(self, name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("__class__ called")


@pytest.fixture
def app() -> Iterator[types.ModuleType]:
    mod = types.ModuleType("retention_app")
    sys.modules["retention_app"] = mod
    try:
        yield mod
    finally:
        del sys.modules["retention_app"]


def test_module_global_path(app: types.ModuleType) -> None:
    app.cache = {"user:42": [None, None, None, User()]}
    r = why_alive(app.cache["user:42"][3])
    assert r.status == "rooted"
    assert [str(p) for p in r.paths] == ["sys.modules['retention_app'].cache['user:42'][3]"]
    assert r.target_type == f"{__name__}.User"
    assert "kept alive by" in str(r)
    assert Retention.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_class_attribute_path(app: types.ModuleType) -> None:
    cls = type("Registry", (), {"items": [User()]})
    cls.__module__ = "retention_app"
    app.Registry = cls
    r = why_alive(cls.items[0])
    assert "class retention_app.Registry.items[0]" in [str(p) for p in r.paths]


def test_closure_path(app: types.ModuleType) -> None:
    def factory() -> object:
        secret = User()
        return lambda: secret

    app.handler = factory()
    ref = weakref.ref(app.handler.__closure__[0].cell_contents)
    r = why_alive(ref())
    assert [str(p) for p in r.paths] == [
        "sys.modules['retention_app'].handler.__closure__[0].cell_contents"
    ]


def test_dict_key_path(app: types.ModuleType) -> None:
    app.seen = {User(): "first"}
    (key,) = app.seen
    ref = weakref.ref(key)
    del key
    r = why_alive(ref())
    assert [str(p) for p in r.paths] == [
        f"sys.modules['retention_app'].seen.keys(){{<{__name__}.User>}}"
    ]


def test_running_thread_frame_path() -> None:
    started, release = threading.Event(), threading.Event()
    box: list[weakref.ref[User]] = []

    def serve() -> None:
        request = User()
        box.append(weakref.ref(request))
        started.set()
        release.wait()

    thread = threading.Thread(target=serve, name="server")
    thread.start()
    try:
        started.wait()
        r = why_alive(box[0]())
    finally:
        release.set()
        thread.join()
    assert r.status == "rooted"
    (path,) = r.paths
    assert path.root.startswith(f"thread 'server' frame {__name__}:")
    assert path.steps == (".f_locals['request']",)


def test_callers_own_variable_is_not_a_path() -> None:
    mine = User()
    r = why_alive(mine)
    assert r.status == "unreferenced"
    assert r.paths == ()
    # reading this frame's locals left no copy behind that keeps them alive
    ref = weakref.ref(mine)
    del mine
    assert ref() is None


def test_garbage_cycle_status() -> None:
    a, b = User(), User()
    a.peer, b.peer = b, a
    ref = weakref.ref(a)
    del a, b
    r = why_alive(ref())
    assert r.status == "garbage"
    assert "reference cycle" in str(r)


def test_hostile_objects_do_not_run_user_code(app: types.ModuleType) -> None:
    h = Hostile()
    app.table = {Hostile(): h}
    app.hostile = Hostile()
    app.hostile.inner = [h]
    Hostile.armed = True
    try:
        r = why_alive(h)
        with pytest.raises(LeakError):
            assert_collected(h)
    finally:
        Hostile.armed = False
    texts = sorted(str(p) for p in r.paths)
    assert texts == [
        "sys.modules['retention_app'].hostile.inner[0]",
        f"sys.modules['retention_app'].table[<{__name__}.Hostile>]",
    ]
    assert f"{__name__}.Hostile" in str(r)


def test_result_keeps_nothing_alive(app: types.ModuleType) -> None:
    app.item = User()
    r = why_alive(app.item)
    ref = weakref.ref(app.item)
    del app.item
    assert ref() is None
    assert r.status == "rooted"


def test_c_level_refcount_is_reported_in_a_fresh_interpreter() -> None:
    out = run_python(
        """
        import ctypes, gc, json
        from leakscope.retention import why_alive

        class Stuck:
            pass

        obj = Stuck()
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
        del obj

        def find():
            found = [o for o in gc.get_objects() if type(o) is Stuck]
            return found.pop()

        def main():
            stuck = find()
            r = why_alive(stuck)
            free = Stuck()
            r2 = why_alive(free)
            print(json.dumps([r.to_dict(), r2.status, str(r)]))

        main()
        """
    )
    data, free_status, text = json.loads(out.strip().splitlines()[-1])
    assert data["status"] == "refcount"
    assert data["paths"] == []
    assert free_status == "unreferenced"
    assert "held by C code" in text and "sys.getrefcount" in text


@pytest.mark.parametrize("python", ["3.10.13", "3.12.1", "3.13.0"])
def test_refcount_and_frames_on_other_versions(python: str) -> None:
    exe = Path.home() / ".pyenv" / "versions" / python / "bin" / "python"
    if not exe.exists():
        pytest.skip(f"Python {python} not installed")
    out = run_python(
        """
        import ctypes, gc, json, sys, threading, types, weakref
        from leakscope.retention import why_alive

        class Stuck:
            pass

        obj = Stuck()
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
        ref = weakref.ref(obj)
        del obj
        def statuses():
            stuck = ref()
            return [why_alive(stuck).status, why_alive(Stuck()).status, why_alive(None).status]

        started, release, box = threading.Event(), threading.Event(), []
        def work():
            held = Stuck(); box.append(weakref.ref(held)); started.set(); release.wait()
        t = threading.Thread(target=work, name="w"); t.start(); started.wait()
        paths = [str(p) for p in why_alive(box[0]()).paths]
        release.set(); t.join()
        print(json.dumps([statuses(), paths]))
        """,
        python=str(exe),
    )
    statuses, paths = json.loads(out.strip().splitlines()[-1])
    assert statuses == ["refcount", "unreferenced", "rooted"]
    assert len(paths) == 1
    assert paths[0].startswith("thread 'w' frame __main__:work line ")
    assert paths[0].endswith(".f_locals['held']")


def test_assert_collected_passes_and_fails() -> None:
    obj = User()
    assert_collected(obj)  # only this frame holds it
    ref = weakref.ref(obj)
    keeper = [obj]
    with pytest.raises(LeakError) as info:
        assert_collected(ref, msg="session leaked")
    message = str(info.value)
    assert message.startswith("session leaked: ")
    assert "f_locals['obj']" in message or "f_locals['keeper']" in message
    assert isinstance(info.value.report, Retention)
    del obj, keeper
    assert_collected(ref)


def test_assert_collected_non_weakrefable_says_so(app: types.ModuleType) -> None:
    app.held = data = [1, 2, 3]
    with pytest.raises(LeakError, match="cannot be weak-referenced"):
        assert_collected(data)
    del app.held
    assert_collected(data)


def test_expect_collected(app: types.ModuleType) -> None:
    with expect_collected() as watch:
        user = watch.add(User())
        rows = watch.add([User()])
        del user, rows
    with pytest.raises(LeakError) as info, expect_collected(msg="request teardown") as watch:
        app.leaked = watch.add(User())
        app.rows = watch.add([1])
    message = str(info.value)
    assert message.startswith("request teardown: 2 of 2 watched objects were not collected")
    assert "sys.modules['retention_app'].leaked" in message
    assert "sys.modules['retention_app'].rows" in message
    assert "id scan" in message


def test_expect_collected_body_error_propagates() -> None:
    with pytest.raises(ZeroDivisionError), expect_collected() as watch:
        keep = watch.add(User())
        1 / 0
    del keep


def test_expect_collected_warns_for_untracked_objects() -> None:
    with pytest.warns(RuntimeWarning, match="cannot be checked"), expect_collected() as watch:
        watch.add((1, 2))


def test_sizeof_says_how_it_measured() -> None:
    data = [b"x" * 1000, b"y" * 1000]
    deep = sizeof(data)
    shallow = sizeof(data, deep=False)
    assert isinstance(deep, Size)
    assert shallow.method == "sys.getsizeof" and not shallow.deep
    assert int(shallow) == sys.getsizeof(data)
    pytest.importorskip("pympler")
    assert deep.deep and deep.method == "pympler.asizeof"
    assert int(deep) > 2000 > int(shallow)
    assert "deep" in str(deep)


def test_to_dot_and_render_without_dot(
    app: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.cache = {"k": User()}
    r = why_alive(app.cache["k"])
    dot = r.to_dot()
    assert dot.startswith("digraph retention {")
    assert "sys.modules['retention_app']" in dot and "\"['k']\"" in dot
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LeakscopeError, match="Graphviz 'dot' binary"):
        r.render(tmp_path / "alive.svg")
    assert (tmp_path / "alive.dot").read_text() == dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_svg_with_dot(app: types.ModuleType, tmp_path: Path) -> None:
    app.cache = {"k": User()}
    r = why_alive(app.cache["k"])
    out = r.render(tmp_path / "alive.svg")
    assert out == tmp_path / "alive.svg"
    svg = out.read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in svg
    assert "retention_app" in svg


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        why_alive(User(), max_depth=0)
