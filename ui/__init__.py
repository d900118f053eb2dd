"""The dashboard's shared UI pieces (pages/ holds one script per page, each placing what these and engine/ give)."""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path


def _standard_library_profile() -> None:
    """Keep ``import profile`` the standard library's module.

    pages/profile.py shares its name with the standard library's ``profile``, which ``cProfile`` imports (and
    torch._dynamo imports cProfile, e.g. when torchvision's model list is read). Where a page script runs on its
    own, Streamlit puts its folder, pages/, first on sys.path (AppTest does too), and that import would run the
    Profile page inside the import. Every page imports this package first, so the standard library's module is
    loaded under its own name before that can happen."""
    loaded = sys.modules.get("profile")
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").parent.name != "pages":
        return
    spec = importlib.util.spec_from_file_location("profile", Path(sysconfig.get_paths()["stdlib"]) / "profile.py")
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["profile"] = module
    spec.loader.exec_module(module)


_standard_library_profile()
