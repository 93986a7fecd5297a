"""Settings of the example Django service (no database, one app module: ``views``)."""

import os

DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
SECRET_KEY = os.environ.get("SECRET_KEY", "demo-secret-key-not-for-production")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
MIDDLEWARE = [
    "leakscope.django.LeakMiddleware",  # first: it sees every request
    "django.middleware.common.CommonMiddleware",
]
# leakscope reads LEAKSCOPE_TOKEN, LEAKSCOPE_DIR... from the environment; or set them here:
# LEAKSCOPE = {"token": "...", "directory": "/tmp/leakscope", "budget": 0.01}
