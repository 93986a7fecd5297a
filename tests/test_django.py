"""The Django adapter on the example project, in a fresh interpreter (Django's test client).

Not yet the gunicorn -w 2 run the issue asks for (see the branch's report): this checks
the middleware, the view names, the endpoints' token rules and the DEBUG=True warning.
"""

from __future__ import annotations

import json

import pytest
from _support import PROJECT_ROOT, run_python

pytest.importorskip("django", reason="django is not installed")

EXAMPLE = PROJECT_ROOT / "examples" / "django_service"

CODE = f"""
import json, os, sys
sys.path[:0] = [{str(EXAMPLE)!r}]
os.chdir({str(EXAMPLE)!r})
os.environ.update(DJANGO_SETTINGS_MODULE="settings", LEAKSCOPE_TOKEN="t",
                  LEAKSCOPE_SAMPLE="1", LEAKSCOPE_BUDGET="1", DJANGO_DEBUG=sys.argv[-1])
import django
django.setup()
from django.test import Client
c = Client(HTTP_HOST="127.0.0.1")
for i in range(40):
    assert c.get(f"/leaky/items/{{i}}").status_code == 200
    assert c.get(f"/clean/items/{{i}}").status_code == 200
auth = {{"HTTP_AUTHORIZATION": "Bearer t"}}
out = {{
    "unmatched": c.get("/nope").status_code,
    "no_token": c.get("/_leakscope/api/status").status_code,
    "wrong": c.get("/_leakscope/api/status", HTTP_AUTHORIZATION="Bearer x").status_code,
    "routes": json.loads(c.get("/_leakscope/api/routes", **auth).content)["routes"],
    "status": json.loads(c.get("/_leakscope/api/status", **auth).content)["workers"],
    "page": c.get("/_leakscope/", **auth).content.decode(),
}}
print(json.dumps(out))
"""


def _run(debug: str) -> dict[str, object]:
    code = CODE.replace("sys.argv[-1]", repr(debug))
    return json.loads(run_python(code).strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_leaking_view_named_and_debug_warned() -> None:
    out = _run("1")
    assert out["unmatched"] == 404 and out["no_token"] == 401 and out["wrong"] == 401
    routes = {r["route"]: r for r in out["routes"]}  # type: ignore[attr-defined]
    leaky, clean = routes["leaky-item"], routes["clean-item"]
    assert leaky["leaking"] is True, leaky
    assert "views.Item" in {t["type"] for t in leaky["top_types"]}, leaky
    assert "views:_CACHE" in {c["container"] for c in leaky["containers"]}, leaky
    assert clean["leaking"] is False, clean
    assert not any(name.startswith("leakscope") for name in routes), set(routes)
    warnings = out["status"][0].get("warnings")  # type: ignore[index]
    assert warnings and "DEBUG=True" in warnings[0], out["status"]
    assert "DEBUG=True" in out["page"]  # type: ignore[operator]


@pytest.mark.slow
def test_no_warning_without_debug() -> None:
    out = _run("0")
    assert "warnings" not in out["status"][0]  # type: ignore[index]
    assert "DEBUG=True" not in out["page"]  # type: ignore[operator]
