"""leakscope's endpoints for a Django URLconf: ``path("_leakscope/", include("leakscope.django.urls"))``.

The dashboard at ``/``, JSON under ``/api/``, ``/metrics``: see :mod:`leakscope.web.endpoints`.
"""

from __future__ import annotations

from leakscope.web.django import NAMESPACE, url_patterns

app_name = NAMESPACE
urlpatterns = url_patterns()
