"""Old module paths, kept for one release: each shim re-exports its new module and warns once.

Before 0.2.0 the package was flat (``asgi_llmguard.verify``, ``asgi_llmguard.storage.redis``...).
Each old path is now a small module that imports its new home, re-exports its names (private
ones too, through a module ``__getattr__``) and emits a :class:`DeprecationWarning` when first
imported. They go in :data:`REMOVED_IN`; docs/changelog.md lists them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

MOVED_IN = "0.2.0"
REMOVED_IN = "0.3.0"


def moved(old: str, *new: ModuleType) -> Callable[[str], object]:
    """Warn that ``old`` moved to ``new``; return the shim's ``__getattr__`` over the new modules."""
    where = " and ".join(module.__name__ for module in new)
    warnings.warn(f"{old} moved to {where} in {MOVED_IN}; the old path goes in {REMOVED_IN}",
                  DeprecationWarning, stacklevel=3)  # the importer (warn skips importlib's frames)

    def __getattr__(name: str) -> object:
        for module in new:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
