"""The small error hierarchy of asgi_llmguard."""

from __future__ import annotations


class LLMGuardError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(LLMGuardError, ValueError):
    """A setting has a value the package cannot use; raised at startup."""


class RequestError(LLMGuardError):
    """A guarded request the stack answers itself with an OpenAI-style 4xx error."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def to_payload(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
