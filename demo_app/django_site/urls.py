"""The demo site's routes: the OpenAI-compatible mock endpoints and an unguarded health check."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from demo_app.django_site import views

urlpatterns = [
    path("v1/chat/completions", csrf_exempt(views.chat_completions)),
    path("v1/completions", csrf_exempt(views.completions)),
    path("v1/models", views.list_models),
    path("health", views.health),
]
