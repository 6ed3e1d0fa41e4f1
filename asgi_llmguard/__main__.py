"""``python -m asgi_llmguard``: the ``llmguard`` command (see :mod:`asgi_llmguard.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
