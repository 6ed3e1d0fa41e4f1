"""Django settings for the demo site: no database, no sessions, no admin, no CSRF middleware."""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "asgi-llmguard-demo-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "demo_app.django_site.urls"
TEMPLATES: list[dict[str, Any]] = []
DATABASES: dict[str, Any] = {}

USE_TZ = True
USE_I18N = False
# The API's paths have no trailing slash, as OpenAI's do.
APPEND_SLASH = False
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
