"""ASGI entry points of the Django demo site.

- ``application``: the site behind the whole asgi_llmguard stack (``Guard(...).wrap``); Django's
  handler sends no lifespan, so the guard opens its resources lazily on the first request.
- ``django_application``: the same site without the stack.

    uvicorn demo_app.django_site.asgi:application --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.django_site.settings")

from django.core.asgi import get_asgi_application
from starlette.types import ASGIApp

from asgi_llmguard import Guard
from demo_app.app import demo_settings

django_application: ASGIApp = get_asgi_application()
application: ASGIApp = Guard(demo_settings()).wrap(django_application)
