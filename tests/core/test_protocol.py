"""The OpenAI wire format: what parse_request accepts and refuses, and answers the openai SDK accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion import Completion

from asgi_llmguard import RequestError
from asgi_llmguard.core.openai_protocol import (
    Answer,
    answer_chunks,
    answer_json,
    kind_of_path,
    parse_request,
    sse_event,
)


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def refuse(payload: Any, kind: str = "chat", content_type: bytes | None = b"application/json") -> RequestError:
    raw = payload if isinstance(payload, bytes) else body(payload)
    with pytest.raises(RequestError) as info:
        parse_request(raw, kind, content_type)  # type: ignore[arg-type]
    error = info.value
    payload_out = error.to_payload()
    assert set(payload_out) == {"error"}
    assert set(payload_out["error"]) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    assert error.message
    return error


# --- accepted ---------------------------------------------------------------------------------------


def test_accepts_a_plain_chat_request() -> None:
    request = parse_request(body({"model": "m", "messages": [{"role": "user", "content": "hi"}]}), "chat")
    assert request.model == "m" and request.stream is False and request.n == 1 and request.max_tokens is None
    assert request.last_user_text() == "hi"
    assert request.context_messages() == []


def test_accepts_content_part_messages_and_reads_their_text() -> None:
    content = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    request = parse_request(body({"model": "m", "messages": [{"role": "user", "content": content}]}), "chat")
    assert request.last_user_text() == "first\nsecond"


def test_image_parts_make_the_text_unreadable_not_invalid() -> None:
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "http://x"}}]
    request = parse_request(body({"model": "m", "messages": [{"role": "user", "content": content}]}), "chat")
    assert request.last_user_text() is None


def test_accepts_tools_response_format_and_options() -> None:
    payload = {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                     {"role": "assistant", "content": None, "tool_calls": []}, {"role": "tool", "content": "x"},
                     {"role": "user", "content": "again"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "response_format": {"type": "json_object"},
        "stream": True, "stream_options": {"include_usage": True},
        "n": 1, "max_tokens": 100, "temperature": 0.2, "top_p": 1, "user": "u-1",
    }
    request = parse_request(body(payload), "chat", b"application/json; charset=utf-8")
    assert request.stream is True and request.include_usage is True
    assert request.tools == payload["tools"] and request.response_format == {"type": "json_object"}
    assert request.user == "u-1" and request.max_tokens == 100
    assert len(request.context_messages()) == 4
    assert "temperature" in request.shaping_params() and "messages" not in request.shaping_params()
    assert "stream" not in request.shaping_params() and "user" not in request.shaping_params()


def test_max_completion_tokens_is_read_when_max_tokens_is_absent() -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 9}
    assert parse_request(body(payload), "chat").max_tokens == 9


def test_accepts_completion_prompts() -> None:
    assert parse_request(body({"model": "m", "prompt": "say"}), "completion").last_user_text() == "say"
    assert parse_request(body({"model": "m", "prompt": ["one"]}), "completion").prompt == "one"
    assert parse_request(body({"model": "m", "prompt": ["a", "b"]}), "completion").prompt is None
    assert parse_request(body({"model": "m", "prompt": [1, 2, 3]}), "completion").prompt is None


def test_accepts_json_suffix_content_types_and_no_content_type() -> None:
    raw = body({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert parse_request(raw, "chat", b"application/vnd.api+json").model == "m"
    assert parse_request(raw, "chat", None).model == "m"


def test_kind_of_path() -> None:
    assert kind_of_path("/v1/chat/completions") == "chat"
    assert kind_of_path("/v1/completions") == "completion"
    assert kind_of_path("/v1/completions/") == "completion"


# --- refused ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b'{"model": "m",}', b"[" * 100_000])
def test_refuses_malformed_json(raw: bytes) -> None:
    error = refuse(raw)
    assert error.status == 400 and error.code == "invalid_json" and error.type == "invalid_request_error"


@pytest.mark.parametrize("payload", [[], [1, 2], "text", 5, None, True])
def test_refuses_a_body_that_is_not_an_object(payload: Any) -> None:
    error = refuse(payload)
    assert error.status == 400 and error.code == "invalid_json"


@pytest.mark.parametrize("role", [["user"], {"name": "user"}])
def test_refuses_unhashable_roles_with_a_request_error(role: Any) -> None:
    error = refuse({"model": "m", "messages": [{"role": role, "content": "x"}]})
    assert (error.param, error.code) == ("messages[0].role", "invalid_value")


def test_refuses_a_missing_model() -> None:
    error = refuse({"messages": [{"role": "user", "content": "x"}]})
    assert (error.status, error.param, error.code) == (400, "model", "missing_required_parameter")


@pytest.mark.parametrize("model", [5, "", None, ["m"], {"id": "m"}, True])
def test_refuses_a_wrong_typed_model(model: Any) -> None:
    error = refuse({"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert (error.status, error.param) == (400, "model")


def test_refuses_missing_messages() -> None:
    error = refuse({"model": "m"})
    assert (error.param, error.code) == ("messages", "missing_required_parameter")


def test_refuses_empty_messages() -> None:
    error = refuse({"model": "m", "messages": []})
    assert (error.param, error.code) == ("messages", "empty_array")


@pytest.mark.parametrize("messages", ["hi", {"role": "user"}, 3, None])
def test_refuses_non_list_messages(messages: Any) -> None:
    error = refuse({"model": "m", "messages": messages})
    assert error.param == "messages" and error.status == 400


@pytest.mark.parametrize("message", ["hi", 1, None, ["user", "hi"]])
def test_refuses_a_message_that_is_not_an_object(message: Any) -> None:
    error = refuse({"model": "m", "messages": [{"role": "user", "content": "ok"}, message]})
    assert error.param == "messages[1]"


@pytest.mark.parametrize("role", [None, "robot", 5, "USER", True])
def test_refuses_bad_roles(role: Any) -> None:
    message = {"content": "x"} if role is None else {"role": role, "content": "x"}
    error = refuse({"model": "m", "messages": [message]})
    assert (error.param, error.code) == ("messages[0].role", "invalid_value")


@pytest.mark.parametrize("content", [5, {"text": "x"}, True])
def test_refuses_wrong_typed_content(content: Any) -> None:
    error = refuse({"model": "m", "messages": [{"role": "user", "content": content}]})
    assert error.param == "messages[0].content"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("stream", "yes"), ("stream", 1), ("stream_options", "usage"),
        ("n", "2"), ("n", 1.5), ("n", True), ("n", 0), ("n", -3),
        ("max_tokens", "100"), ("max_tokens", 10.5), ("max_tokens", 0), ("max_tokens", False),
        ("max_completion_tokens", "1"),
        ("temperature", "hot"), ("temperature", True), ("temperature", [0.5]),
        ("top_p", "1"), ("presence_penalty", {}), ("frequency_penalty", "0"),
        ("user", 5), ("tools", {"type": "function"}), ("functions", "f"), ("response_format", "json"),
    ],
)
def test_refuses_wrong_types_with_the_param_named(name: str, value: Any) -> None:
    error = refuse({"model": "m", "messages": [{"role": "user", "content": "x"}], name: value})
    assert error.status == 400
    assert error.param == name
    assert error.code == "invalid_type"
    assert f"'{name}'" in error.message


@pytest.mark.parametrize("prompt", [5, None, {"text": "x"}, [1, "a"], [True]])
def test_refuses_bad_completion_prompts(prompt: Any) -> None:
    payload: dict[str, Any] = {"model": "m"} if prompt is None else {"model": "m", "prompt": prompt}
    error = refuse(payload, "completion")
    assert error.param == "prompt"


@pytest.mark.parametrize("content_type", [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data"])
def test_refuses_non_json_content_type_with_415(content_type: bytes) -> None:
    error = refuse({"model": "m", "messages": [{"role": "user", "content": "x"}]}, content_type=content_type)
    assert (error.status, error.code) == (415, "unsupported_media_type")


def test_huge_integer_is_a_json_error_not_a_crash() -> None:
    error = refuse(b'{"model": "m", "n": ' + b"9" * 10_000 + b"}")
    assert error.status == 400


# --- answers ----------------------------------------------------------------------------------------


ANSWER = Answer(text="The answer is forty-two, and here is a long enough explanation to split into pieces.",
                usage={"prompt_tokens": 5, "completion_tokens": 17, "total_tokens": 22}, model="gpt-test")


def test_answer_json_is_a_valid_chat_completion() -> None:
    data = answer_json(ANSWER, "chat", "gpt-test")
    completion = ChatCompletion.model_validate(data)
    assert completion.choices[0].message.content == ANSWER.text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 22
    assert completion.model == "gpt-test" and completion.id.startswith("chatcmpl-")


def test_answer_json_with_tool_calls_is_valid() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    answer = Answer(text="", finish_reason="tool_calls", tool_calls=(call,))
    completion = ChatCompletion.model_validate(answer_json(answer, "chat", "m"))
    message = completion.choices[0].message
    assert message.content is None
    assert message.tool_calls is not None and message.tool_calls[0].function.name == "lookup"


def test_answer_json_without_usage_is_still_valid() -> None:
    completion = ChatCompletion.model_validate(answer_json(Answer(text="x"), "chat", "m"))
    assert completion.usage is not None and completion.usage.total_tokens == 0


def test_answer_json_for_completions_is_a_valid_completion() -> None:
    completion = Completion.model_validate(answer_json(ANSWER, "completion", "m"))
    assert completion.choices[0].text == ANSWER.text
    assert completion.object == "text_completion"


@pytest.mark.parametrize("include_usage", [False, True])
def test_answer_chunks_are_valid_chat_chunks_whose_deltas_rebuild_the_text(include_usage: bool) -> None:
    chunks = list(answer_chunks(ANSWER, "chat", "gpt-test", include_usage=include_usage, piece_chars=10))
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert len({c.id for c in parsed}) == 1
    text = "".join(choice.delta.content or "" for c in parsed for choice in c.choices)
    assert text == ANSWER.text
    finishes = [choice.finish_reason for c in parsed for choice in c.choices if choice.finish_reason]
    assert finishes == ["stop"]
    assert parsed[0].choices[0].delta.role == "assistant"
    if include_usage:
        assert parsed[-1].choices == [] and parsed[-1].usage is not None
        assert parsed[-1].usage.completion_tokens == 17
    else:
        assert all(c.usage is None for c in parsed)


def test_answer_chunks_carry_tool_calls() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    answer = Answer(text="", finish_reason="tool_calls", tool_calls=(call,))
    parsed = [ChatCompletionChunk.model_validate(c) for c in answer_chunks(answer, "chat", "m", include_usage=False)]
    calls = [tc for c in parsed for ch in c.choices for tc in (ch.delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "lookup"


def test_answer_chunks_for_completions_rebuild_the_text() -> None:
    chunks = list(answer_chunks(ANSWER, "completion", "m", include_usage=True, piece_chars=7))
    # The SDK types a completion stream chunk as Completion, whose finish_reason is non-null, though the API
    # sends null until the last choice; the SDK builds chunks without validating, so only the ends validate.
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    assert "".join(ch["text"] for c in chunks for ch in c["choices"]) == ANSWER.text
    final = Completion.model_validate(chunks[-2])
    assert final.choices[0].finish_reason == "stop"
    usage = Completion.model_validate(chunks[-1])
    assert usage.choices == [] and usage.usage is not None and usage.usage.total_tokens == 22


def test_sse_event_frames_json_and_done() -> None:
    assert sse_event("[DONE]") == b"data: [DONE]\n\n"
    assert json.loads(sse_event({"a": "é"})[6:]) == {"a": "é"}


def test_answer_round_trips_through_a_dict() -> None:
    assert Answer.from_dict(json.loads(json.dumps(ANSWER.to_dict()))) == ANSWER
