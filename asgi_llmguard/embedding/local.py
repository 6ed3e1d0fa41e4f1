"""Text embeddings for the semantic cache, computed off the event loop.

The ONNX model runs in one dedicated worker thread. Callers queue their text
and await an asyncio future; the worker takes every text waiting (up to
``max_batch`` texts and ``max_batch_tokens`` estimated tokens), embeds them in as few calls as padding
makes worthwhile (texts of similar length share a call; see ``_length_groups``) and hands each result
back to its caller's loop with ``loop.call_soon_threadsafe``. The queue is bounded: when ``max_pending`` texts
already wait, when the texts ahead would clearly take the worker longer than the caller's budget
(``ADMIT_MARGIN`` times it, at the pace its recent calls went), or when a caller's time budget runs
out, the caller gets :class:`EmbeddingUnavailable` and the cache fails open. The worker also passes
over a waiting text that could no longer be ready before its caller stops waiting. Both keep an
overloaded worker embedding the texts it can in time, instead of texts whose callers have given up
while every caller times out (measured with 8 callers of 16 KB prompts: 6 of 600 embedded in time
without them, 9.6 a second with them; short prompts from 32 clients lose no hit to either).

Long texts cost what the model reads, not what the client sent. The model reads its first
``max_tokens`` tokens (256 for all-MiniLM-L6-v2) and the tokenizer cuts the rest, but only after
tokenising all of it; so a text is first cut to ``CHARS_PER_TOKEN`` characters per token the model
reads (2 048 characters: prose runs 3 to 5 characters a token, so the model sees the same tokens).
A call's memory grows with its tokens (attention is batch x length²), so a batch is bounded by
tokens as well as by texts; and ONNX Runtime's CPU memory arena, which keeps the largest
allocation it ever made and grows by fragments with every new input shape, is off
(``enable_cpu_mem_arena=False``, as fastembed allows): 32 prompts of 16 KB took the process from
0.25 to 0.96 GB with the arena, and every embedding ran past its budget.

Work that no request waits for (the cache audit's judge, cache/audit/judge.py) goes through
:meth:`FastEmbedEmbedder.embed_when_idle`: its own queue, which the worker takes from only while no
request's text waits, one text per call, so a request arriving meanwhile waits for one short call at
most; those texts never count against a request's admission. (Measured by bench/audit.py: audits
on the shared queue took a served hit's p50 from 17.7 to 60 ms.)

fastembed (and with it onnxruntime) is imported only when a model is loaded,
so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..core.types import Embedder, Vector

if TYPE_CHECKING:
    from fastembed import TextEmbedding

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MODEL",
    "Embedder",
    "EmbeddingStats",
    "EmbeddingUnavailable",
    "FastEmbedEmbedder",
    "Vector",
    "load_text_embedding",
]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Files fastembed cannot load a local model folder without.
_REQUIRED_FILES = ("model.onnx", "tokenizer.json", "tokenizer_config.json")

# Sizes known without loading the model (lower-cased names); others are learnt at start().
_KNOWN_DIMENSIONS = {DEFAULT_MODEL.lower(): 384}

CHARS_PER_TOKEN = 8  # a text is cut to this many characters per token the model reads, before tokenising
DEFAULT_MAX_TOKENS = 512  # what the model reads when its tokenizer does not say
# Estimated tokens of one worker batch: two texts the model reads in full, or some 30 short prompts.
# Long texts gain nothing from sharing a call (measured on 2 busy cores: 101 ms for one 256-token text
# alone, 113-153 ms a text in calls of 4 and 16), and a call's memory grows with batch x length².
MAX_BATCH_TOKENS = 512
# A text is refused at once when the texts ahead of it would take ADMIT_MARGIN times the caller's budget
# at the worker's recent pace: the pace is an average of noisy calls, and a refusal that was not needed
# costs a miss, so only a queue clearly too long for the budget refuses (at 1.0, 32 clients of short
# prompts with max_batch=1 lost 27% of their hits). The worker passes over a text when LATE_MARGIN times
# its expected compute would end after its deadline. PACE_WEIGHT: one call's weight in the pace.
ADMIT_MARGIN = 1.5
LATE_MARGIN = 1.25
PACE_WEIGHT = 0.1


def estimate_tokens(text: str, max_tokens: int) -> int:
    """Tokens the model reads of ``text``: about one per 4 characters, plus [CLS] and [SEP], at most ``max_tokens``."""
    return min(max_tokens, -(-len(text) // 4) + 2)


class EmbeddingUnavailable(Exception):
    """No embedding this time: over budget, queue full, model not loaded, or closed.

    Callers treat it as "skip the semantic tier", never as a failed request.
    """


@dataclass(frozen=True, slots=True)
class EmbeddingStats:
    """A snapshot of an embedder's counters (for tests, benchmarks and metrics)."""

    batches: int  # micro-batches the worker took off the queue
    model_calls: int  # ONNX calls: a batch of mixed lengths is split into runs of similar length
    texts_embedded: int
    largest_batch: int
    rejected: int  # refused when offered: queue full, or the texts ahead would outlast the budget
    timed_out: int  # the caller's budget ran out while it waited
    failed: int
    pending: int
    late: int = 0  # passed over by the worker: they could not be ready before their caller stopped waiting
    idle_embedded: int = 0  # texts embedded for embed_when_idle (no request waiting)
    idle_pending: int = 0


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Set HF_HUB_OFFLINE=1 for the duration of a load, unless the user set it already."""
    if "HF_HUB_OFFLINE" in os.environ:
        yield
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        os.environ.pop("HF_HUB_OFFLINE", None)


def _check_model_dir(model_dir: str) -> Path:
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise EmbeddingUnavailable(f"embedding model folder {path} does not exist")
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise EmbeddingUnavailable(
            f"embedding model folder {path} lacks {', '.join(missing)}"
            " (`llmguard build-model DIR` builds a complete folder)"
        )
    return path


def load_text_embedding(model_name: str, model_dir: str | None, threads: int, *,
                        memory_arena: bool = True) -> TextEmbedding:
    """Load a fastembed model: from the hub (cached) or, with ``model_dir``, from a local folder.

    Blocking (about a second, longer on a first hub download): call it from a thread.
    Raises :class:`EmbeddingUnavailable` with the reason when the model cannot be loaded.
    ``memory_arena=False`` turns ONNX Runtime's CPU memory arena off (memory then follows the inputs).
    """
    if model_dir is None:
        from fastembed import TextEmbedding

        try:
            return TextEmbedding(model_name, threads=threads, enable_cpu_mem_arena=memory_arena)
        except Exception as exc:
            raise EmbeddingUnavailable(f"could not load embedding model {model_name!r}: {exc}") from exc

    path = _check_model_dir(model_dir)
    # Import before touching the environment, so huggingface_hub reads the
    # user's own settings into its module constants, not our temporary one.
    from fastembed import TextEmbedding

    try:
        with _hub_offline():
            return TextEmbedding(
                model_name,
                threads=threads,
                specific_model_path=str(path),
                local_files_only=True,
                enable_cpu_mem_arena=memory_arena,
            )
    except Exception as exc:
        raise EmbeddingUnavailable(f"could not load embedding model {model_name!r} from {path}: {exc}") from exc


def _unit_rows(matrix: npt.ArrayLike) -> Vector:
    """Rows as float32 unit vectors (fastembed normalises most models; this makes it certain)."""
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


# One ONNX call pads every text to the longest, so a long prompt among short ones
# multiplies the batch's cost (measured: 29 short prompts and 3 long ones took
# 842 ms as one call, 211 ms as 32 single calls, 181 ms split by length). A
# micro-batch is therefore cut into runs of similar length. Costs are counted in
# characters, a stand-in for tokens that needs no second tokenisation.
_CALL_OVERHEAD_CHARS = 64  # what one more call costs, as padding characters across the batch
_TEXT_OVERHEAD_CHARS = 8  # [CLS], [SEP] and the like
_TRUNCATED_CHARS = 1200  # the model stops at 256 tokens


def _length_groups(texts: Sequence[str]) -> list[list[int]]:
    """Indices of ``texts`` in groups of similar length, each one embedding call.

    Exact 1-D partition by dynamic programming over the texts sorted by length,
    minimising calls x overhead + sum of (group size x longest in group); O(n^2)
    for n texts, which is microseconds for micro-batch sizes.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    lengths = [min(len(texts[i]), _TRUNCATED_CHARS) + _TEXT_OVERHEAD_CHARS for i in order]
    best = [0] + [0] * len(order)
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[end - 1]
        best[end], cut[end] = min(
            (best[start] + _CALL_OVERHEAD_CHARS + (end - start) * longest, start) for start in range(end)
        )
    groups: list[list[int]] = []
    end = len(order)
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    groups.reverse()
    return groups


@dataclass(slots=True, eq=False)
class _Job:
    text: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Vector]
    tokens: int  # estimated: what the batch bound counts
    deadline: float | None  # time.monotonic() by which its caller stops waiting
    idle: bool = False  # embed_when_idle's: taken only while no request's text waits


def _tokens_read(model: TextEmbedding) -> int:
    """How many tokens the loaded model reads of a text (its tokenizer's truncation), or the default."""
    tokenizer = getattr(getattr(model, "model", None), "tokenizer", None)
    truncation = getattr(tokenizer, "truncation", None)
    length = truncation.get("max_length") if isinstance(truncation, dict) else None
    return length if isinstance(length, int) and length > 0 else DEFAULT_MAX_TOKENS


def _settle(outcomes: Sequence[tuple[asyncio.Future[Vector], Vector | BaseException]]) -> None:
    """Runs on the caller's loop: resolve futures whose callers still wait."""
    for future, outcome in outcomes:
        if future.done():  # the caller timed out or was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _deliver(jobs: Sequence[_Job], outcomes: Sequence[Vector | BaseException]) -> None:
    """Hand results back with one thread-safe call per event loop, not one per text."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Vector], Vector | BaseException]]]
    by_loop = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, outcome))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, items)


class FastEmbedEmbedder:
    """An :class:`Embedder` running a fastembed ONNX model in one micro-batching worker thread.

    ``timeout`` is the default per-call budget in seconds (queue wait plus
    compute); ``None`` waits as long as it takes. ``max_pending`` bounds the
    texts waiting for the worker; beyond it :meth:`embed` fails at once.
    ``max_batch_tokens`` bounds the estimated tokens of one batch (a longer text goes alone).
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        model_dir: str | None = None,
        *,
        threads: int = 1,
        max_batch: int = 32,
        max_pending: int = 256,
        timeout: float | None = 0.5,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_batch_tokens < 1:
            raise ValueError("max_batch_tokens must be at least 1")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.model_name = model_name
        self.model_dir = model_dir
        self.threads = threads
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.timeout = timeout
        self.max_batch_tokens = max_batch_tokens
        self.max_tokens = DEFAULT_MAX_TOKENS  # learnt from the tokenizer at start()
        self._dimensions: int | None = _KNOWN_DIMENSIONS.get(model_name.lower())
        self._cond = threading.Condition()
        self._waiting: collections.deque[_Job] = collections.deque()
        self._idle: collections.deque[_Job] = collections.deque()  # embed_when_idle's texts
        self._idle_embedded = 0
        self._thread: threading.Thread | None = None
        self._started: asyncio.Future[None] | None = None
        self._ready = False
        self._closed = False
        self._load_error: EmbeddingUnavailable | None = None
        # Written by the worker thread, read by anyone; plain ints are safe under the GIL.
        self._batches = 0
        self._calls = 0
        self._texts = 0
        self._largest_batch = 0
        self._rejected = 0
        self._late = 0
        self._queued_tokens = 0  # estimated tokens waiting or being embedded (under the lock)
        self._seconds_per_token: float | None = None  # the worker's pace: an average of its recent calls
        self._timed_out = 0
        self._failed = 0

    @property
    def dimensions(self) -> int:
        """Vector size; known before start() for the default model, otherwise after it."""
        if self._dimensions is None:
            raise RuntimeError("the embedding size is known once start() has loaded the model")
        return self._dimensions

    @property
    def ready(self) -> bool:
        return self._ready and not self._closed

    def stats(self) -> EmbeddingStats:
        return EmbeddingStats(
            batches=self._batches,
            model_calls=self._calls,
            texts_embedded=self._texts,
            largest_batch=self._largest_batch,
            rejected=self._rejected,
            timed_out=self._timed_out,
            failed=self._failed,
            pending=len(self._waiting),
            late=self._late,
            idle_embedded=self._idle_embedded,
            idle_pending=len(self._idle),
        )

    async def start(self) -> None:
        """Load the model in the worker thread. Safe to call more than once, or concurrently."""
        if self._closed:
            raise EmbeddingUnavailable("the embedder is closed")
        if self._started is None:
            loop = asyncio.get_running_loop()
            self._started = loop.create_future()
            self._thread = threading.Thread(
                target=self._run, args=(loop, self._started), name="llmguard-embedding", daemon=True
            )
            self._thread.start()
        # Shielded: a caller cancelled while waiting must not cancel the load for everyone.
        await asyncio.shield(self._started)

    @property
    def max_chars(self) -> int:
        """Characters of a text that can reach the model; the rest is cut before tokenising."""
        return self.max_tokens * CHARS_PER_TOKEN

    async def embed(self, text: str, *, timeout: float | None = None) -> Vector:  # noqa: ASYNC109
        """The text's embedding as a float32 unit vector, or :class:`EmbeddingUnavailable`.

        ``timeout`` overrides the embedder's default budget for this call. Only the first
        :attr:`max_chars` characters are embedded: the model reads no further.
        """
        return await self._submit(text, timeout, idle=False)

    async def embed_when_idle(self, text: str, *, timeout: float | None = None) -> Vector:  # noqa: ASYNC109
        """Like :meth:`embed`, for work no request waits for: embedded only while no request's text
        waits, one text per model call, never counted against a request's admission."""
        return await self._submit(text, timeout, idle=True)

    async def _submit(self, text: str, timeout: float | None, *, idle: bool) -> Vector:  # noqa: ASYNC109
        if self._closed:
            raise EmbeddingUnavailable("the embedder is closed")
        if not self._ready:
            # A fresh exception each time: re-raising one instance would grow its traceback forever.
            reason = str(self._load_error) if self._load_error else "the embedder is not started"
            raise EmbeddingUnavailable(reason)
        loop = asyncio.get_running_loop()
        text = text[: self.max_chars]
        budget = self.timeout if timeout is None else timeout
        job = _Job(text, loop, loop.create_future(), estimate_tokens(text, self.max_tokens),
                   None if budget is None else time.monotonic() + budget, idle)
        with self._cond:
            if self._closed:
                raise EmbeddingUnavailable("the embedder is closed")
            if idle:
                if len(self._idle) >= self.max_pending:
                    raise EmbeddingUnavailable(f"idle embedding queue full ({self.max_pending} texts waiting)")
                self._idle.append(job)
                self._cond.notify()
            else:
                if len(self._waiting) >= self.max_pending:
                    self._rejected += 1
                    raise EmbeddingUnavailable(f"embedding queue full ({self.max_pending} texts waiting)")
                pace = self._seconds_per_token
                if (budget is not None and pace is not None and self._queued_tokens
                        and (self._queued_tokens + job.tokens) * pace > ADMIT_MARGIN * budget):
                    self._rejected += 1
                    raise EmbeddingUnavailable(f"the texts ahead would take longer than {budget:.3f} s")
                self._waiting.append(job)
                self._queued_tokens += job.tokens
                self._cond.notify()
        try:
            async with asyncio.timeout(budget):
                return await job.future
        except TimeoutError:
            self._withdraw(job)
            if not idle:
                self._timed_out += 1
            raise EmbeddingUnavailable(f"no embedding within {budget:.3f} s") from None
        except asyncio.CancelledError:
            self._withdraw(job)
            raise

    async def close(self) -> None:
        """Stop the worker; waiting callers get :class:`EmbeddingUnavailable`. Idempotent."""
        with self._cond:
            self._closed = True
            abandoned = list(self._waiting) + list(self._idle)
            self._waiting.clear()
            self._idle.clear()
            self._queued_tokens = 0
            self._cond.notify_all()
        _deliver(abandoned, [EmbeddingUnavailable("the embedder was closed") for _ in abandoned])
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            # A batch in flight finishes first; that is a few milliseconds.
            await asyncio.to_thread(thread.join)

    def _withdraw(self, job: _Job) -> None:
        """Skip a text whose caller gave up, if the worker has not taken it yet."""
        with self._cond, contextlib.suppress(ValueError):
            if job.idle:
                self._idle.remove(job)
                return
            self._waiting.remove(job)
            self._queued_tokens -= job.tokens

    # -- worker thread ---------------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[None]) -> None:
        try:
            model = load_text_embedding(self.model_name, self.model_dir, self.threads, memory_arena=False)
            # Warm up the session and learn the true size in one go.
            probe = _unit_rows(list(model.embed(["warm up"])))
            self.max_tokens = _tokens_read(model)
        except BaseException as exc:
            error = (
                exc
                if isinstance(exc, EmbeddingUnavailable)
                else EmbeddingUnavailable(f"could not load embedding model {self.model_name!r}: {exc}")
            )
            self._load_error = error
            self._report_start(loop, started, error)
            return
        self._dimensions = int(probe.shape[1])
        self._ready = True
        self._report_start(loop, started, None)
        self._serve(model)

    @staticmethod
    def _report_start(
        loop: asyncio.AbstractEventLoop, started: asyncio.Future[None], error: BaseException | None
    ) -> None:
        def report() -> None:
            if started.done():
                return
            if error is None:
                started.set_result(None)
            else:
                started.set_exception(error)

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(report)

    def _serve(self, model: TextEmbedding) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._idle and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch, late = self._take()
            if late:
                self._late += sum(1 for job in late if not job.idle)
                _deliver(late, [EmbeddingUnavailable("the embedding would not be ready within its budget")
                                for _ in late])
            if not batch:
                continue
            self._batches += 1
            self._largest_batch = max(self._largest_batch, len(batch))
            for group in _length_groups([job.text for job in batch]):
                jobs = [batch[i] for i in group]
                self._embed_group(model, jobs)

    def _paced(self, tokens: int, seconds: float, *, queued: bool = True) -> None:
        """Count a call's tokens as done (``queued``: they were counted as waiting), and fold its pace into
        the average (a tenth of the weight)."""
        pace = seconds / max(1, tokens)
        with self._cond:
            if queued:
                self._queued_tokens -= tokens
            current = self._seconds_per_token
            self._seconds_per_token = pace if current is None else current + PACE_WEIGHT * (pace - current)

    def _take(self) -> tuple[list[_Job], list[_Job]]:
        """The next batch (the lock held): waiting texts in order, up to ``max_batch`` texts and
        ``max_batch_tokens`` estimated tokens; and the texts passed over because, at the worker's
        pace, they could not be ready before their callers stop waiting (embedding them would only
        make the texts behind them late too). With no request's text waiting: one idle text."""
        batch: list[_Job] = []
        late: list[_Job] = []
        if not self._waiting:
            now = time.monotonic()
            while self._idle:
                job = self._idle.popleft()
                if job.deadline is None or job.deadline > now:
                    return [job], late
                late.append(job)
            return batch, late
        tokens = 0
        now = time.monotonic()
        pace = self._seconds_per_token
        while self._waiting and len(batch) < self.max_batch:
            job = self._waiting[0]
            if (job.deadline is not None and pace is not None
                    and now + LATE_MARGIN * (tokens + job.tokens) * pace > job.deadline):
                late.append(self._waiting.popleft())
                self._queued_tokens -= job.tokens
                continue
            if batch and tokens + job.tokens > self.max_batch_tokens:
                break
            batch.append(self._waiting.popleft())
            tokens += job.tokens
        return batch, late

    def _embed_group(self, model: TextEmbedding, jobs: list[_Job]) -> None:
        texts = [job.text for job in jobs]
        tokens = sum(job.tokens for job in jobs)
        idle = jobs[0].idle  # an idle text is always alone in its call
        started = time.perf_counter()
        try:
            vectors = _unit_rows(list(model.embed(texts, batch_size=len(texts))))
        except Exception as exc:
            self._failed += len(jobs)
            _deliver(jobs, [EmbeddingUnavailable(f"embedding failed: {exc}") for _ in jobs])
            return
        finally:
            self._paced(tokens, time.perf_counter() - started, queued=not idle)
        self._calls += 1
        self._texts += len(jobs)
        if idle:
            self._idle_embedded += 1
        # Copies: a cached vector must not keep its whole batch's matrix alive.
        _deliver(jobs, [row.copy() for row in vectors])
