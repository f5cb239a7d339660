"""Serving needs none of the training code: no inference module imports ``gsv_core.training``."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import gsv_core
from test_layers import assert_modules_import

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORE = PROJECT_ROOT / "gsv_core"
ALLOWED = {CORE / "__main__.py"}  # the command line's train-* commands load it lazily

_IMPORT_WITHOUT_TRAINING = """
import importlib, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "gsv_core.training" or name.startswith("gsv_core.training."):
            raise ImportError(f"{name} is not importable in this test")
        return None

sys.meta_path.insert(0, Refuse())
for name in sys.argv[1:]:
    importlib.import_module(name)
assert not [m for m in sys.modules if m.startswith("gsv_core.training")]
print("ok", len(sys.argv) - 1)
"""


def _inference_modules() -> list[str]:
    names = ["gsv_core"]
    for module in pkgutil.walk_packages(gsv_core.__path__, "gsv_core."):
        if module.name != "gsv_core.training" and not module.name.startswith("gsv_core.training."):
            names.append(module.name)
    return names


def test_every_inference_module_imports_with_the_training_package_unimportable():
    modules = _inference_modules()
    assert "gsv_core.engine.pipeline" in modules and "gsv_core.__main__" in modules
    assert_modules_import(_IMPORT_WITHOUT_TRAINING, modules)


def test_no_module_outside_the_training_package_names_it():
    pattern = re.compile(r"^\s*(from|import)\s+(gsv_core\.training|\.+training)\b", re.MULTILINE)
    for path in CORE.rglob("*.py"):
        if path in ALLOWED or (CORE / "training") in path.parents:
            continue
        assert not pattern.search(path.read_text(encoding="utf-8")), f"{path} imports the training package"
