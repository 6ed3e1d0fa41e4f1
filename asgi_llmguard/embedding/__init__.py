"""Embeddings for the semantic cache: the local fastembed model, a remote endpoint, the embedding
server, and the builder of the offline model folder.

``asgi_llmguard.embedding`` was one module before 0.2.0; this package's face re-exports what that
module exported (without a warning: a module and a package cannot share the name). Importing it
stays cheap: fastembed and onnxruntime load only with a model.
"""

from ..core.types import Embedder, Vector
from .local import DEFAULT_MODEL, EmbeddingStats, EmbeddingUnavailable, FastEmbedEmbedder, load_text_embedding

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "EmbeddingStats",
    "EmbeddingUnavailable",
    "FastEmbedEmbedder",
    "Vector",
    "load_text_embedding",
]
