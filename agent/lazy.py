"""Lazy package exports (PEP 562), so that importing a package for its settings does not load its heavy parts.

The supervisor process builds camera jobs from `agent.motion` and `agent.video` settings but never decodes or
analyses a frame; loading numpy, OpenCV and PyAV there would cost ~40 MB of PSS on a Pi for nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `exports[name]` (a module path) on first use and caches the value."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
