"""A minimal Django project whose async views answer like the mock LLM; ``asgi.py`` guards it.

Run it with ``uvicorn demo_app.django_site.asgi:application`` (guarded) or
``uvicorn demo_app.django_site.asgi:django_application`` (the same site without the stack).
"""
