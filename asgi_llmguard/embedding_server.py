"""``python -m asgi_llmguard.embedding_server``: the embedding server (:mod:`asgi_llmguard.embedding.server`).

A contract name (docs/operations.md), kept without a warning; ``llmguard serve-embeddings`` runs the same.
"""

import sys

from .embedding.server import *  # noqa: F403
from .embedding.server import main

if __name__ == "__main__":
    sys.exit(main())
