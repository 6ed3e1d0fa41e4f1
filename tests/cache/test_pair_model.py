"""The pair model (cache/pair_model.py): its files, and the same logits on every kind of x86 CPU.

The verifier's combiner and strictness points were fitted on exact int8 sums. onnxruntime's uint8 x int8
kernel for CPUs without AVX-512 VNNI saturates instead (two products added in a 16-bit lane): on such a
CPU (an AVX2-only AMD EPYC) the first pair below gave 1.89 where exact sums give 0.25, and 775 verdicts of
~44,000 over our pair sets moved. The emulated-CPU test runs the real loading code on such a CPU under
QEMU's user-mode emulator (Debian's ``qemu-user``, which .ci/run installs), whatever CPU the tests run on.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asgi_llmguard.cache.pair_model import PairModel

PAIR_LOGITS = [
    ("Which language has the most speakers worldwide?", "What is the most spoken language in the world?", 0.251),
    ("What is the fastest way to learn a new language?", "How can I learn a foreign language quickly?", 0.310),
    ("What is the capital of France?", "What's the capital city of France?", 3.048),
    ("Convert 5 km to miles", "Convert 8 km to miles", -4.337),
]

# Run on the emulated CPU: the logits of PairModel (the cache's loading code) and, to show the emulated CPU
# really takes the saturating kernel, of the same file loaded without PairModel's session option.
_ON_ANOTHER_CPU = """
import json, sys
import numpy as np, onnxruntime
from asgi_llmguard.cache import pair_model
pairs = json.loads(sys.argv[1])
model = pair_model.PairModel()
ours = [model.logits(q, [c])[0] for q, c in pairs]
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
plain = onnxruntime.InferenceSession(str(pair_model._packaged("pair_model.onnx")), options,
                                     providers=["CPUExecutionProvider"])
enc = model._tokenizer.encode(*pairs[0])
ids = np.array([enc.ids], dtype=np.int64)
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.array([enc.type_ids])}
print(json.dumps({"ours": ours, "plain_first": float(plain.run(None, feeds)[0].reshape(-1)[0])}))
"""


def test_a_missing_pair_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        PairModel(tmp_path / "nope.onnx")


def test_the_pair_model_gives_the_logits_it_was_fitted_on() -> None:
    model = PairModel()
    for query, cached, expected in PAIR_LOGITS:
        assert model.logits(query, [cached])[0] == pytest.approx(expected, abs=0.05), query


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the saturating kernel is x86's")
def test_a_cpu_without_vnni_gives_the_same_logits() -> None:
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-x86_64 not installed (Debian: apt-get install qemu-user; .ci/run installs it)")
    pairs = [[q, c] for q, c, _ in PAIR_LOGITS]
    # Haswell: AVX2, no AVX-512 and so no VNNI.
    done = subprocess.run([qemu, "-cpu", "Haswell", sys.executable, "-c", _ON_ANOTHER_CPU, json.dumps(pairs)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Without the option the emulated CPU saturates, as an AVX2-only machine did (1.89 against 0.25) ...
    assert abs(result["plain_first"] - PAIR_LOGITS[0][2]) > 0.5
    # ... and with it the cache's model gives the logits the verifier was fitted on.
    for (query, _, expected), got in zip(PAIR_LOGITS, result["ours"], strict=True):
        assert got == pytest.approx(expected, abs=0.05), query
