"""Web services: the WSGI middleware, its Flask adapter, gunicorn hooks and Prometheus metrics.

The documented import paths are the shims ``leakscope.wsgi``, ``leakscope.flask``,
``leakscope.gunicorn`` and ``leakscope.prometheus``.
"""
