"""Shared test fixtures.

The goldens made by the official implementation live in ``../shared/gsv-reference``
(next to the project root). Tests that need them skip with a clear message when absent.
"""

from __future__ import annotations

import os

# Before huggingface_hub / transformers / gradio are imported anywhere: never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(os.environ.get("GSV_REFERENCE_DIR", PROJECT_ROOT.parent / "shared" / "gsv-reference"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"official reference data not found at {path} (set GSV_REFERENCE_DIR); skipping parity test")
    return path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Root of the official goldens; skips the test when it is absent."""
    return _require(REFERENCE_DIR)


@pytest.fixture(scope="session")
def official_data_dir(reference_dir: Path) -> Path:
    """The official dictionary files (never shipped with the project)."""
    return _require(reference_dir / "data")


@pytest.fixture(scope="session")
def reference_models_dir(reference_dir: Path) -> Path:
    """Tiny random-weight checkpoints in the official file formats."""
    return _require(reference_dir / "models")


@pytest.fixture(scope="session")
def training_dir(reference_dir: Path) -> Path:
    """The training reference: a tiny dataset, the official preparation and training steps."""
    return _require(reference_dir / "training" / "prepared.json").parent


@pytest.fixture
def prepare():
    """A stand-in for the pipeline's prepare_speaker that records its calls (speaker library tests)."""
    from speaker_fakes import FakePrepare

    return FakePrepare()


@pytest.fixture
def library(tmp_path: Path):
    """An empty speaker library in the test's temporary folder."""
    from gsv_core.speakers import SpeakerLibrary

    return SpeakerLibrary(tmp_path / "speakers")
