"""Load a bench script (``bench/<name>.py``) as a module, for tests that run its workload smaller."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from servers import ROOT

__all__ = ["load_bench"]


def load_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` imported as ``bench_<name>`` (registered in ``sys.modules``, as dataclasses need)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
