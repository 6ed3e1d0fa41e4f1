"""Async views that answer like the mock LLM, built from the same functions as the Starlette mock."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from demo_app.mock_llm import (
    SSE_HEADERS,
    CompletionKind,
    Delays,
    MockRequestError,
    completion_body,
    cut_after_from_headers,
    error_body,
    failure_status_from_headers,
    models_body,
    parse_json_body,
    plan_chat_completion,
    plan_text_completion,
    sleep_for_full_answer,
    stream_events,
)

# Read once, when Django loads the views.
DELAYS = Delays.resolve()


async def chat_completions(request: HttpRequest) -> HttpResponse:
    return await _complete(request, "chat")


async def completions(request: HttpRequest) -> HttpResponse:
    return await _complete(request, "text")


async def list_models(request: HttpRequest) -> HttpResponse:
    return JsonResponse(models_body())


async def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def _error(body: dict[str, Any], status: int) -> HttpResponse:
    return JsonResponse(body, status=status)


async def _complete(request: HttpRequest, kind: CompletionKind) -> HttpResponse:
    if request.method != "POST":
        return _error(error_body(f"{request.method} is not allowed here; use POST"), 405)
    status = failure_status_from_headers(request.headers)
    if status is not None:
        error_type = "server_error" if status >= 500 else "invalid_request_error"
        return _error(error_body(f"mock failure requested by X-Mock-Fail ({status})", error_type=error_type), status)
    try:
        payload = parse_json_body(request.body)
        completion = plan_chat_completion(payload) if kind == "chat" else plan_text_completion(payload)
    except MockRequestError as exc:
        return _error(exc.body(), exc.status)
    if completion.stream:
        events = stream_events(completion, DELAYS, cut_after_from_headers(request.headers))
        response = StreamingHttpResponse(events, content_type="text/event-stream")
        for name, value in SSE_HEADERS.items():
            response[name] = value
        return response
    await sleep_for_full_answer(completion, DELAYS)
    return JsonResponse(completion_body(completion))
