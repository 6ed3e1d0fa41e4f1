"""Properties: whatever a client sends, the stack answers with the app's answer or an OpenAI-style 4xx;
whatever the app answers, the stack passes it through unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from apps import CHAT, COMPLETIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_llmguard import Guard, RequestError
from asgi_llmguard.cache.keys import namespace_of
from asgi_llmguard.core.openai_protocol import ROLES, parse_request

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)
roles = st.sampled_from(sorted(ROLES)) | json_values
parts = st.fixed_dictionaries({}, optional={"type": st.sampled_from(["text", "image_url"]) | scalars,
                                            "text": st.text(max_size=20) | json_values})
messages = json_values | st.fixed_dictionaries({}, optional={
    "role": roles,
    "content": st.text(max_size=40) | st.lists(parts | json_values, max_size=3) | json_values,
    "name": json_values,
    "tool_calls": json_values,
})
requests = json_values | st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["gpt-test", "auto"]) | json_values,
    "messages": st.lists(messages, max_size=4) | json_values,
    "prompt": st.text(max_size=40) | st.lists(st.text(max_size=5) | st.integers(), max_size=3) | json_values,
    "stream": st.booleans() | json_values,
    "stream_options": st.fixed_dictionaries({"include_usage": json_values}) | json_values,
    "n": st.integers(min_value=-3, max_value=3) | json_values,
    "max_tokens": st.integers(min_value=-1, max_value=5000) | json_values,
    "max_completion_tokens": json_values,
    "temperature": st.floats() | json_values,
    "top_p": json_values,
    "tools": st.lists(json_values, max_size=2) | json_values,
    "functions": json_values,
    "response_format": st.dictionaries(st.text(max_size=5), json_values, max_size=2) | json_values,
    "user": st.text(max_size=10) | json_values,
})


def check_error(error: RequestError) -> None:
    assert 400 <= error.status < 500
    payload = error.to_payload()["error"]
    assert isinstance(payload, dict) and isinstance(payload["message"], str) and payload["message"]


# --- parse_request ----------------------------------------------------------------------------------


@EXAMPLES
@given(raw=st.binary(max_size=300), kind=st.sampled_from(["chat", "completion"]))
def test_random_bytes_never_raise_anything_but_request_error(raw: bytes, kind: Any) -> None:
    try:
        parse_request(raw, kind, b"application/json")
    except RequestError as error:
        check_error(error)


@EXAMPLES
@given(value=requests, kind=st.sampled_from(["chat", "completion"]))
def test_random_json_never_raises_anything_but_request_error(value: Any, kind: Any) -> None:
    raw = json.dumps(value).encode()
    try:
        request = parse_request(raw, kind, b"application/json")
    except RequestError as error:
        check_error(error)
        return
    assert isinstance(request.model, str) and request.model
    assert isinstance(request.stream, bool) and isinstance(request.n, int) and request.n >= 1
    request.last_user_text()
    request.shaping_params()


# --- the whole stack --------------------------------------------------------------------------------


ANSWER = {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "fixed answer"},
                       "finish_reason": "stop"}]}


async def answering_app(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads its body and always gives the same answer."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = json.dumps(ANSWER).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def check_answer(response: httpx.Response) -> None:
    if response.status_code == 200:
        # The app's own body on a miss; on a repeated /v1/completions request the exact cache replays the answer in
        # the completions format ("text"), as an OpenAI completions client expects.
        choice = response.json()["choices"][0]
        assert (choice["message"]["content"] if "message" in choice else choice["text"]) == "fixed answer"
        return
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) >= {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def stack() -> Any:
    return Guard(cache_semantic=False, router_aliases={"auto": ["small", "large"]}).wrap(answering_app)


@EXAMPLES
@given(value=requests, path=st.sampled_from([CHAT, COMPLETIONS]))
async def test_random_json_through_the_stack_gives_the_answer_or_a_4xx(stack: Any, value: Any, path: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack), base_url="http://t") as client:
        response = await client.post(path, content=json.dumps(value).encode(),
                                     headers={"content-type": "application/json"})
    check_answer(response)


@EXAMPLES
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain", None]))
async def test_random_bytes_through_the_stack_give_the_answer_or_a_4xx(stack: Any, raw: bytes,
                                                                       content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack), base_url="http://t") as client:
        response = await client.post(CHAT, content=raw, headers=headers)
    check_answer(response)


async def test_unhashable_role_through_the_stack_is_a_400(stack: Any) -> None:
    body = {"model": "m", "messages": [{"role": ["user"], "content": "hi"}]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack), base_url="http://t") as client:
        response = await client.post(CHAT, json=body)
    assert response.status_code == 400


# --- whatever the app answers passes through unchanged ----------------------------------------------


# Answers of roughly the OpenAI shape with any field of any type: the observer must survive them all.
names = st.none() | st.text(max_size=5) | json_values
tool_calls = st.lists(st.fixed_dictionaries({}, optional={
    "index": st.integers(min_value=0, max_value=2) | json_values,
    "id": json_values,
    "function": st.fixed_dictionaries({}, optional={"name": names, "arguments": names}) | json_values,
}) | json_values, max_size=2) | json_values
parts_of_answer = st.fixed_dictionaries({}, optional={
    "role": json_values, "content": json_values, "tool_calls": tool_calls,
}) | json_values
choices = st.fixed_dictionaries({}, optional={
    "index": json_values,
    "delta": parts_of_answer,
    "message": parts_of_answer,
    "text": json_values,
    "finish_reason": st.sampled_from([None, "stop", "length", "content_filter"]) | json_values,
})
events = st.fixed_dictionaries({}, optional={
    "choices": st.lists(choices | json_values, max_size=2) | json_values,
    "usage": json_values,
    "model": json_values,
    "error": json_values,
}) | json_values


def sse_body(items: list[Any], done: bool) -> bytes:
    body = b"".join(b"data: " + json.dumps(item).encode() + b"\n\n" for item in items)
    return body + (b"data: [DONE]\n\n" if done else b"")


async def post_through_stack(body: bytes, *, sse: bool, status: int = 200, cut: int = 1000) -> list[httpx.Response]:
    chunks = [body[i:i + cut] for i in range(0, len(body), cut)] or [b""]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        content_type = b"text/event-stream" if sse else b"application/json"
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})

    guard = Guard(cache_semantic=False)
    responses = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard.wrap(app)), base_url="http://t") as client:
        for _ in range(2):  # the second time may be a replay of a kept answer
            responses.append(await client.post(CHAT, json={"model": "m",
                                                            "messages": [{"role": "user", "content": "x"}]}))
    return responses


@EXAMPLES
@given(items=st.lists(events, max_size=4), done=st.booleans(), sse=st.booleans(), cut=st.integers(1, 40),
       status=st.sampled_from([200, 200, 500]))
async def test_any_app_answer_passes_through_the_observer_unchanged(items: list[Any], done: bool, sse: bool,
                                                                   cut: int, status: int) -> None:
    body = sse_body(items, done) if sse else json.dumps(items[0] if items else {}).encode()
    for response in await post_through_stack(body, sse=sse, status=status, cut=cut):
        assert response.status_code in (status, 200)
        if response.headers["x-llmguard-cache"] == "miss":
            assert response.content == body


@pytest.mark.parametrize(
    ("sse", "event"),
    [
        (True, {"choices": 5}),
        (True, {"choices": [{"delta": {"tool_calls": 5}}]}),
        (True, {"choices": [{"delta": {"tool_calls": [{"index": [1]}]}}]}),
        (True, {"choices": [{"delta": {"tool_calls": [{"function": {"name": 5}}]}}]}),
        (False, {"choices": 5}),
        (False, {"choices": [{"message": {"tool_calls": [{"function": {"arguments": [1]}}]}}]}),
    ],
)
async def test_malformed_app_answers_pass_through_unchanged_and_are_not_kept(sse: bool, event: Any) -> None:
    body = sse_body([event], True) if sse else json.dumps(event).encode()
    first, second = await post_through_stack(body, sse=sse)
    assert first.content == body
    assert second.headers["x-llmguard-cache"] == "miss" and second.content == body  # not kept


# --- namespaces -------------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@EXAMPLES
@given(params=st.dictionaries(st.sampled_from(["seed", "stop", "logit_bias", "x_custom", "reasoning_effort"]),
                              json_values, max_size=4), data=st.data())
def test_namespace_ignores_key_order_and_changes_with_any_shaping_value(params: dict[str, Any],
                                                                        data: st.DataObject) -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **params}

    def namespace(payload: dict[str, Any], identity: str | None = "id") -> str:
        return namespace_of(parse_request(json.dumps(payload).encode(), "chat"), identity)

    assert namespace(base) == namespace(dict(reversed(list(base.items()))))
    assert namespace(base) == namespace({**base, "stream": True, "user": "someone else"})
    assert namespace(base) != namespace(base, "other-id")
    assert namespace(base, None) != namespace(base, "id")
    if params:
        key = data.draw(st.sampled_from(sorted(params)))
        changed = data.draw(json_values.filter(lambda v: canonical(v) != canonical(params[key])))
        assert namespace(base) != namespace({**base, key: changed})
