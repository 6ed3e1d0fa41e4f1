"""A small cross-encoder that reads two prompts together and says whether one answer serves both.

Cosine similarity compares two prompts' vectors made apart; it cannot see that "capital city" and
"capital" ask the same while "Paris" and "Lyon" do not. A cross-encoder reads both prompts in one
pass, so every word of one can attend to every word of the other. This one is a few layers of
all-MiniLM-L6-v2, fine-tuned on labelled pairs (docs/cache-quality.md says which and how), shipped
int8 (per-channel) in the package, and run with onnxruntime and the ``tokenizers`` library, both of
which fastembed already brings. It is one signal of :class:`~.verify.Verifier`, never the only one.

onnxruntime and tokenizers are imported only when a model is loaded, so importing this module
stays cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_MAX_TOKENS", "PairModel"]

#: Tokens of the two prompts together that the model reads; longer pairs lose their longer side's tail.
DEFAULT_MAX_TOKENS = 128

_MODEL_FILE = "pair_model.onnx"
_TOKENIZER_FILE = "pair_tokenizer.json"
# A pair's text beyond this many characters cannot reach the model's tokens; cutting it first keeps a
# 16 KB prompt from costing a 16 KB tokenisation.
_MAX_CHARS = 2000
# onnxruntime's name for it: kOrtSessionOptionsAvx2PrecisionMode.
_EXACT_INT8_SUMS = "session.x64quantprecision"


class PairModel:
    """Scores prompt pairs: a logit, above zero when the model reads them as asking the same thing.

    Thread-safe: onnxruntime sessions may run from several threads, and the tokenizer is used
    under a lock (the Rust tokenizer's truncation settings are shared state).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        *,
        threads: int = 1,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model = _packaged(_MODEL_FILE) if model_path is None else Path(model_path)
        tokenizer = packaged_tokenizer() if tokenizer_path is None else Path(tokenizer_path)
        for path in (model, tokenizer):
            if not path.is_file():
                raise FileNotFoundError(f"pair model file missing: {path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Pairs are short and few per lookup: a growing arena would keep the largest batch's memory.
        options.enable_cpu_mem_arena = False
        # On a CPU without AVX-512 VNNI, onnxruntime's uint8 x int8 kernel adds two products in a 16-bit lane
        # and saturates: the same pair then gets another logit (up to 1.6 log-odds) and another verdict.
        # This option has onnxruntime store such weights as uint8 on those CPUs only, where uint8 x uint8
        # sums exactly; VNNI CPUs keep the faster signed kernel, which is exact there.
        options.add_session_config_entry(_EXACT_INT8_SUMS, "1")
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens, strategy="longest_first")
        self._lock = threading.Lock()
        self.max_tokens = max_tokens

    def logits(self, query: str, candidates: Sequence[str]) -> list[float]:
        """One logit per candidate for ``query`` (one model call for all of them)."""
        if not candidates:
            return []
        pairs = [(query[:_MAX_CHARS], c[:_MAX_CHARS]) for c in candidates]
        with self._lock:  # one pair (the usual call) without encode_batch's thread pool, which would
            # compete for the cores with the embedding running meanwhile (cache/lexicon.py)
            encodings = ([self._tokenizer.encode(*pairs[0])] if len(pairs) == 1
                         else self._tokenizer.encode_batch(pairs))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (out,) = self._session.run(None, feeds)
        return [float(x) for x in np.asarray(out).reshape(-1)]


def _packaged(name: str) -> Path:
    return Path(str(resources.files("asgi_llmguard").joinpath("data", name)))


def packaged_tokenizer() -> Path:
    """The packaged pair model's tokenizer file (its WordPiece vocabulary is read by the same-question shortcuts)."""
    return _packaged(_TOKENIZER_FILE)
