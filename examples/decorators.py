"""``@no_leaks`` for tests and ``@watch`` for production code.

    python examples/decorators.py

``@no_leaks`` turns a function into a leak check: each call runs it repeatedly and
raises ``leakscope.LeakError`` (an ``AssertionError``) when it leaks.  ``@watch``
never repeats a call: it samples real calls as they happen and reports a function
whose calls keep leaving objects behind (a WARNING on the ``leakscope`` logger, and
``func.leakscope_report()``).
"""

from __future__ import annotations

import logging

import leakscope

_AUDIT_LOG: list[dict[str, str]] = []  # grows forever: nobody ever trims it


@leakscope.no_leaks
def render_page() -> str:
    return "<p>" + ", ".join(str(i) for i in range(20)) + "</p>"  # nothing kept


@leakscope.no_leaks
def record_login() -> None:
    _AUDIT_LOG.append({"event": "login"})  # one dict kept per call


@leakscope.watch(sample=0.5, log=False)  # measure every 2nd call (production: ~0.01)
def handle_request(n: int) -> int:
    _AUDIT_LOG.append({"event": f"request {n}"})
    return n


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    render_page()
    print("@no_leaks render_page: no leak")
    try:
        record_login()
    except leakscope.LeakError as exc:
        print("@no_leaks record_login raised LeakError:")
        print(str(exc).splitlines()[0])
        caught = True
    else:
        caught = False
    for n in range(20_000):  # real traffic: @watch only observes it
        handle_request(n)
    report = handle_request.leakscope_report()  # type: ignore[attr-defined]
    print()
    print("@watch handle_request after 20,000 calls: leaking =", report.leaked)
    if report.leaked:
        print(report)
    return 0 if caught and report.leaked else 1


if __name__ == "__main__":
    raise SystemExit(main())
