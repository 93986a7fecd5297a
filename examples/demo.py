"""The main demo: a request handler that leaks, and leakscope finding and explaining it.

    python examples/demo.py

``leakscope.check`` calls the handler repeatedly (warm-up runs first, then measured
runs until the trend is clear), decides whether it leaks, and explains what grows,
what holds it and where it was allocated.  The bounded twin is checked the same
way and is found clean: a cache that plateaus is not a leak.
"""

from __future__ import annotations

import itertools

import demo_app

import leakscope


def main() -> int:
    users = itertools.count()

    print("Checking render_profile (an unbounded module-level cache)...\n")
    leaky = leakscope.check(lambda: demo_app.render_profile(next(users)))
    print(leaky)

    print("\nChecking render_profile_bounded (a bounded lru_cache)...\n")
    clean = leakscope.check(lambda: demo_app.render_profile_bounded(next(users)))
    print(clean)

    ok = leaky.leaked and not clean.leaked
    print(
        "\nDemo",
        "succeeded: the leak was found, the bounded cache was not flagged."
        if ok
        else "FAILED: the verdicts were not the expected ones.",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
