"""Serve the demo with uvicorn.

    python -m demo_app --host 127.0.0.1 --port 8000    # the demo app behind the whole stack
    python -m demo_app --no-guard                      # the same app without the stack (benchmark baseline)
    python -m demo_app --mock-only                     # just the mock LLM (an upstream for proxy tests)
    python -m demo_app --proxy                         # LLMProxy behind the stack, to LLMGUARD_UPSTREAMS
    python -m demo_app --answers answers.csv           # the mock answers by meaning (prompt,answer rows)
    python -m demo_app --fault error                   # the mock fails (also POST /mock/fault at run time)

The mock's delays come from ``LLMGUARD_DEMO_TTFT_MS`` and ``LLMGUARD_DEMO_TOKEN_MS``; the stack's
settings from ``LLMGUARD_*`` variables.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

# Import strings, so that uvicorn can start several workers.
APPS = {
    "guarded": "demo_app.app:create_guarded_app",
    "no-guard": "demo_app.app:create_unguarded_app",
    "mock-only": "demo_app.mock_llm:create_mock_llm",
    "proxy": "demo_app.app:create_proxy_app_factory",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo_app",
        description="Serve the asgi_llmguard demo: a mock streaming LLM endpoint behind the guard stack.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-guard", action="store_true", help="serve the same app without the stack")
    mode.add_argument("--mock-only", action="store_true", help="serve just the mock LLM")
    mode.add_argument("--proxy", action="store_true", help="serve LLMProxy behind the stack, to LLMGUARD_UPSTREAMS")
    parser.add_argument("--answers", metavar="FILE",
                        help="CSV of prompt,answer rows: the mock answers listed prompts with their text "
                             "(paraphrases sharing one answer), others with the echo")
    parser.add_argument("--fault", choices=["none", "error", "hang-mid-stream"],
                        help="start the mock failing (LLMGUARD_DEMO_FAULT); POST /mock/fault changes it")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: %(default)s)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn log level (default: %(default)s)",
    )
    parser.add_argument("--no-access-log", action="store_true", help="turn off uvicorn's access log")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.proxy:
        problem = _proxy_configuration_problem()
        if problem:
            print(f"python -m demo_app: error: {problem}", file=sys.stderr)
            return 2
    if args.workers < 1:
        print("python -m demo_app: error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.answers is not None:
        from demo_app.mock_llm import ANSWERS_ENV, load_answers

        try:
            load_answers(args.answers)
        except (OSError, ValueError) as exc:
            print(f"python -m demo_app: error: --answers: {exc}", file=sys.stderr)
            return 2
        os.environ[ANSWERS_ENV] = os.path.abspath(args.answers)  # read by the mock in every worker
    if args.fault is not None:
        os.environ["LLMGUARD_DEMO_FAULT"] = args.fault
    mode = "no-guard" if args.no_guard else "mock-only" if args.mock_only else "proxy" if args.proxy else "guarded"
    os.environ["LLMGUARD_DEMO_LOG_LEVEL"] = args.log_level  # read by the app factories in every worker

    import uvicorn

    options: dict[str, Any] = {
        "factory": True, "host": args.host, "port": args.port, "workers": args.workers,
        "log_level": args.log_level, "access_log": not args.no_access_log, "timeout_graceful_shutdown": 5,
    }
    if args.workers == 1:
        uvicorn.run(APPS[mode], **options)
    else:
        _run_workers(APPS[mode], options)
    return 0


def _run_workers(app: str, options: dict[str, Any]) -> None:
    """``uvicorn.run`` with several workers, but with Nagle's algorithm off on the shared socket.

    uvicorn binds that socket with protocol 0, so asyncio never sets TCP_NODELAY on the
    connections it accepts (Kludex/uvicorn#3149): every response written in two parts (headers,
    then body; each SSE chunk) then waits for the client's delayed ACK, about 40 ms. Set on the
    listening socket, TCP_NODELAY is inherited by every accepted connection (Linux).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, **options)
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()


def _proxy_configuration_problem() -> str | None:
    """Why ``--proxy`` cannot start (say it before uvicorn starts workers), or None."""
    from asgi_llmguard import ConfigurationError, Settings

    try:
        upstreams = Settings.from_env().upstreams
    except ConfigurationError as exc:
        return str(exc)
    if not upstreams:
        return ('--proxy forwards to LLMGUARD_UPSTREAMS, which is not set; e.g. '
                'LLMGUARD_UPSTREAMS=\'[{"url": "http://127.0.0.1:8001/v1", "models": ["mock-small"]}]\' '
                '(python -m demo_app --mock-only --port 8001 serves such an upstream)')
    return None


if __name__ == "__main__":
    sys.exit(main())
