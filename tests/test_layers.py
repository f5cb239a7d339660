"""The layers stay apart: the inference library imports no web framework and nothing of the app."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import gsv_core

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEB_FRAMEWORKS = ("gradio", "gradio_client", "fastapi", "starlette", "uvicorn", "voice_studio", "spaces")

_IMPORT_ALL_WITHOUT_WEB = f"""
import importlib, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {WEB_FRAMEWORKS!r}:
            raise ImportError(f"{{name}} is not importable in this test")
        return None

sys.meta_path.insert(0, Refuse())
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {WEB_FRAMEWORKS!r})
assert not loaded, loaded
print("ok", len(sys.argv) - 1)
"""


def _core_modules() -> list[str]:
    names = ["gsv_core"]
    for module in pkgutil.walk_packages(gsv_core.__path__, "gsv_core."):
        names.append(module.name)
    return names


def assert_modules_import(script: str, modules: list[str]) -> None:
    """Run ``script`` (it imports its arguments and prints ``ok <count>``) on ``modules`` in a clean process."""
    completed = subprocess.run(
        [sys.executable, "-c", script, *modules],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == f"ok {len(modules)}"


def test_every_core_module_imports_with_web_frameworks_unimportable():
    modules = _core_modules()
    assert "gsv_core.engine.pipeline" in modules and "gsv_core.speakers" in modules
    assert_modules_import(_IMPORT_ALL_WITHOUT_WEB, modules)


def test_no_core_source_names_the_app_or_a_web_framework():
    for path in (PROJECT_ROOT / "gsv_core").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name in WEB_FRAMEWORKS:
            assert f"import {name}" not in source and f"from {name}" not in source, f"{path} imports {name}"
