"""The optional cache admin endpoint: invalidate an entry or a namespace, or flush, with a token.

POST {cache_admin_path} with ``Authorization: Bearer <LLMGUARD_ADMIN_TOKEN>`` and a JSON body
``{"action": "flush"}``, ``{"action": "invalidate_entry", "id": 12}`` or
``{"action": "invalidate_namespace", "namespace": "..."}``.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from ..core.asgi import ClientDisconnected, bearer_token, read_body, send_json
from ..core.openai_protocol import error_payload
from ..core.types import Receive, Scope, Send
from ..errors import RequestError
from .stores.base import StorageUnavailable

if TYPE_CHECKING:
    from .engine import CacheHost


async def serve_cache_admin(guard: CacheHost, scope: Scope, receive: Receive, send: Send) -> None:
    token = bearer_token(scope) or ""
    expected = guard.settings.admin_token or ""
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        await send_json(send, 401, error_payload("A valid admin bearer token is required.",
                                                 "authentication_error", code="invalid_admin_token"))
        return
    if scope["method"] != "POST":
        await send_json(send, 405, error_payload("Use POST.", code="method_not_allowed"))
        return
    await guard.ensure_started()
    try:
        body = json.loads(await read_body(scope, receive, 64 * 1024) or b"{}")
        result = await _act(guard, body)
    except ClientDisconnected:
        return
    except StorageUnavailable as exc:  # never report "done" for an invalidation that did not happen
        await send_json(send, 503, error_payload(f"The cache storage is unavailable: {exc}", "server_error",
                                                 code="cache_storage_unavailable"))
        return
    except RequestError as error:
        await send_json(send, error.status, error.to_payload())
        return
    except ValueError:
        await send_json(send, 400, error_payload("The body must be a JSON object.", code="invalid_json"))
        return
    await send_json(send, 200, result)


async def _act(guard: CacheHost, body: Any) -> dict[str, Any]:
    cache = guard.cache
    if cache is None:
        raise RequestError("The cache is disabled.", status=409, code="cache_disabled")
    action = body.get("action") if isinstance(body, dict) else None
    if action == "flush":
        await cache.flush()
        return {"flushed": True}
    if action == "invalidate_entry" and isinstance(body.get("id"), int):
        return {"removed": int(await cache.invalidate_entry(body["id"]))}
    if action == "invalidate_namespace" and isinstance(body.get("namespace"), str):
        return {"removed": await cache.invalidate_namespace(body["namespace"])}
    raise RequestError("Unknown action: expected flush, invalidate_entry (id) or invalidate_namespace (namespace).",
                       param="action", code="invalid_value")
