"""Reference-graph primitives: edge labels, root names, the path search."""

from __future__ import annotations

import sys
import threading
import types
import weakref
from collections import namedtuple
from collections.abc import Iterator

import pytest

from leakscope._refgraph import RetentionPath, edge_label, find_paths, label_chain, search


class Thing:
    pass


class Slotted:
    __slots__ = ("held",)


Pair = namedtuple("Pair", "left right")
THING = f"{__name__}.Thing"


@pytest.fixture
def app() -> Iterator[types.ModuleType]:
    mod = types.ModuleType("refgraph_app")
    sys.modules["refgraph_app"] = mod
    try:
        yield mod
    finally:
        del sys.modules["refgraph_app"]


def test_edge_labels_read_like_python() -> None:
    t = Thing()
    t.attr = target = Thing()
    assert edge_label({"user:42": target}, target) == "['user:42']"
    assert edge_label([0, 1, target], target) == "[2]"
    assert edge_label((target,), target) == "[0]"
    assert edge_label(Pair(1, target), target) == ".right"
    assert edge_label({target: 1}, target) == f".keys(){{<{THING}>}}"
    assert edge_label({target}, target) == f"{{<{THING}>}}"
    s = Slotted()
    s.held = target
    assert edge_label(s, target) == ".held"
    assert label_chain([t, target]) == [(1, ".attr")]
    method = t.__init__
    assert edge_label(method, t) == ".__self__"

    def outer() -> object:
        def inner() -> object:
            return target

        return inner

    fn = outer()
    assert fn.__closure__ is not None
    cell = fn.__closure__[0]
    assert edge_label(fn, fn.__closure__) == ".__closure__"
    assert edge_label(cell, target) == ".cell_contents"


def test_odd_dict_keys_are_named_by_type_and_hidden_without_values() -> None:
    target = Thing()
    key = Thing()
    assert edge_label({key: target}, target) == f"[<{THING}>]"
    path = RetentionPath("sys.modules['app']", (".cache", "['user:42']", "[3]", "['ok']"), ())
    assert path.format(show_values=False) == "sys.modules['app'].cache[<str>][3]['ok']"
    assert str(path) == "sys.modules['app'].cache['user:42'][3]['ok']"
    assert RetentionPath.from_dict(path.to_dict()) == path


def test_traceback_and_frame_labels() -> None:
    def fail() -> None:
        local_value = Thing()  # noqa: F841
        raise ValueError("boom")

    try:
        fail()
    except ValueError as exc:
        tb = exc.__traceback__
    assert tb is not None and tb.tb_next is not None
    frame = tb.tb_next.tb_frame
    assert edge_label(tb.tb_next, frame) == ".tb_frame"
    assert edge_label(frame, frame.f_locals["local_value"]) == ".f_locals['local_value']"


def test_module_global_and_class_attribute_paths(app: types.ModuleType) -> None:
    app.cache = {"user:42": [0, 1, 2, Thing()]}
    paths = find_paths([app.cache["user:42"][3]])
    assert [str(p) for p in paths] == ["sys.modules['refgraph_app'].cache['user:42'][3]"]
    assert paths[0].types == ("module", "dict", "list", THING)

    holder = type("Holder", (), {"registry": {"k": Thing()}})
    holder.__module__ = "refgraph_app"
    app.Holder = holder
    paths = find_paths([holder.registry["k"]])
    assert "class refgraph_app.Holder.registry['k']" in [str(p) for p in paths]


def test_a_class_made_at_run_time_is_not_a_root(app: types.ModuleType) -> None:
    # A class a registry keeps (made per call) is named through the registry that holds it.
    made = type("Made", (), {"fields": {"id": Thing()}})
    made.__module__ = "refgraph_app"
    app.registry = {"Made": [made]}
    paths = [str(p) for p in find_paths([made.fields["id"]])]
    assert "sys.modules['refgraph_app'].registry['Made'][0].fields['id']" in paths
    assert not any(p.startswith("class ") for p in paths), paths


def test_loggers_are_roots_named_as_people_get_them() -> None:
    import logging

    logger = logging.getLogger("refgraph_app.jobs")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        paths = [str(p) for p in find_paths([handler])]
    finally:
        logger.removeHandler(handler)
    assert "logging.getLogger('refgraph_app.jobs').handlers[0]" in paths


def test_paths_through_closures_and_dict_keys(app: types.ModuleType) -> None:
    def make() -> object:
        captured = Thing()

        def inner() -> object:
            return captured

        return inner

    app.fn = make()
    target = app.fn.__closure__[0].cell_contents
    ref = weakref.ref(target)
    del target
    assert [str(p) for p in find_paths([ref()])] == [
        "sys.modules['refgraph_app'].fn.__closure__[0].cell_contents"
    ]
    app.index = {Thing(): 1}
    (key,) = app.index
    ref = weakref.ref(key)
    del key
    assert [str(p) for p in find_paths([ref()])] == [
        f"sys.modules['refgraph_app'].index.keys(){{<{THING}>}}"
    ]


def test_running_thread_frame_is_a_root() -> None:
    started = threading.Event()
    release = threading.Event()
    box: list[weakref.ref[Thing]] = []

    def worker() -> None:
        held = Thing()
        box.append(weakref.ref(held))
        started.set()
        release.wait()

    thread = threading.Thread(target=worker, name="refgraph-worker")
    thread.start()
    try:
        started.wait()
        (path,) = find_paths([box[0]()])
    finally:
        release.set()
        thread.join()
    text = str(path)
    assert text.startswith(f"thread 'refgraph-worker' frame {__name__}:")
    assert "worker line " in text
    assert text.endswith(".f_locals['held']")


def test_many_targets_share_one_search(app: types.ModuleType) -> None:
    app.bucket = [Thing() for _ in range(50)]
    app.other = {"x": Thing()}
    targets = [*app.bucket[10:20], app.other["x"]]
    paths = find_paths(targets, max_paths=3)
    # one path per holder: the shared list once, the dict once
    assert len(paths) == 2
    texts = sorted(str(p) for p in paths)
    assert texts[0].startswith("sys.modules['refgraph_app'].bucket[")
    assert texts[1] == "sys.modules['refgraph_app'].other['x']"
    # the caller's own list of targets is not reported as a holder
    assert not any("targets" in t for t in texts)


def test_wide_frontier_uses_the_index_and_finds_the_same_path(app: types.ModuleType) -> None:
    target = Thing()
    wrappers = []
    for _ in range(200):
        w = Thing()
        w.t = target
        wrappers.append(w)
    app.g, app.h = wrappers[:100], wrappers[100:]
    del wrappers, w
    ref = weakref.ref(target)
    del target
    result = search([ref()], max_paths=2)
    assert result.rooted is True
    assert result.referrers == 200
    texts = sorted(str(p) for p in result.paths)
    assert len(texts) == 2
    assert texts[0].startswith("sys.modules['refgraph_app'].g[")
    assert texts[1].startswith("sys.modules['refgraph_app'].h[")
    assert all(t.endswith("].t") for t in texts)


def test_garbage_cycle_has_no_root() -> None:
    a, b = Thing(), Thing()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    del a, b
    result = search([ref()])
    assert result.paths == []
    assert result.rooted is False
    assert result.referrers == 1


def test_paths_hold_no_user_objects(app: types.ModuleType) -> None:
    app.item = Thing()
    paths = find_paths([app.item])
    ref = weakref.ref(app.item)
    del app.item
    assert ref() is None
    assert all(type(x) is str for p in paths for x in (p.root, *p.steps, *p.types))


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        find_paths([Thing()], max_depth=0)
    with pytest.raises(ValueError, match="max_paths"):
        find_paths([Thing()], max_paths=-1)
