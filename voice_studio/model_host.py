"""The shared pipeline: loaded once in the background, with a status line while it loads.

Until the models are ready (or when weights are missing) the speaker library and the
pronunciation preview keep working; :attr:`ModelHost.status` says what is missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from gsv_core.engine.pipeline import VoicePipeline

from .errors import ServiceError, scrub_paths

ProgressFn = Callable[[float, str], None]
PipelineLoader = Callable[[ProgressFn], VoicePipeline]
LOGGER = logging.getLogger("voice_studio.models")


class ModelHost:
    """Owns the one :class:`VoicePipeline` of the app."""

    def __init__(self, load: PipelineLoader | None) -> None:
        """``load(progress)`` builds the pipeline, reporting download progress as (fraction, message)."""
        self._load = load
        self._pipeline: VoicePipeline | None = None
        self._error: str | None = None if load else "no model weights configured"
        self._lock = threading.Lock()
        self._message = "loading models..."
        self._fraction = 0.0

    def start_loading(self) -> None:
        """Load the pipeline in a background thread (does nothing when already loaded)."""
        if self._load is not None and self._pipeline is None and self._error is None:
            threading.Thread(target=self._load_once, daemon=True, name="load-pipeline").start()

    def load_now(self) -> None:
        """Load the pipeline in this thread (ZeroGPU: models must be on ``cuda`` before any GPU call)."""
        self._load_once()

    def _load_once(self) -> VoicePipeline | None:
        with self._lock:
            if self._pipeline is None and self._load is not None and self._error is None:
                try:
                    self._pipeline = self._load(self._report)
                except Exception as error:  # a short public reason; the details go to the server log
                    self._error = public_reason(error)
                    LOGGER.error("model loading failed", exc_info=error)
            return self._pipeline

    def _report(self, fraction: float, message: str) -> None:
        self._fraction = min(max(fraction, 0.0), 1.0)
        self._message = f"loading models: {message} ({100 * self._fraction:.0f}%)"

    @property
    def loading_fraction(self) -> float | None:
        """How far loading (downloads included) has come, 0-1; None once it has ended or failed."""
        return None if self._pipeline is not None or self._error else self._fraction

    @property
    def status(self) -> str:
        if self._pipeline is not None:  # plus how Chinese polyphones are read, when that is worth a word
            note = getattr(self._pipeline.frontend, "g2pw_note", None)
            return f"ready: GPT-SoVITS {self._pipeline.version}" + (f" · {note}" if note else "")
        if self._error:
            return f"synthesis unavailable: {self._error}"
        return self._message

    def pipeline(self) -> VoicePipeline:
        """The loaded pipeline (waiting for a load in progress); ServiceError 503 when there is none."""
        pipeline = self._pipeline or self._load_once()
        if pipeline is None:
            raise ServiceError(f"synthesis is unavailable: {self._error}. The operator can start the app with "
                               "--t2s, --sovits, --hubert and --bert (and --sv for v2Pro) pointing at local files",
                               status=503, headers={"Retry-After": "60"})
        return pipeline


def public_reason(error: BaseException) -> str:
    """Why synthesis is off, for visitors: which files, never where they were looked for or how to pass them."""
    missing = getattr(error, "missing", ())
    if missing:
        names = ", ".join(sorted({Path(name).name for name in missing})[:6])
        return f"the model files are not on this server and could not be downloaded ({names}); see the server log"
    if isinstance(error, FileNotFoundError):
        return scrub_paths(str(error).splitlines()[0] if str(error) else "a model file is missing")[:200]
    if isinstance(error, ValueError):  # files that do not fit together, in plain English
        return scrub_paths(str(error).splitlines()[0])[:300]
    return "the models could not be loaded; see the server log"
