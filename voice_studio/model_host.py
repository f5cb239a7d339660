"""The shared pipeline: loaded once in the background, with a status line while it loads.

Until the models are ready (or when weights are missing) the speaker library and the
pronunciation preview keep working; :attr:`ModelHost.status` says what is missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gsv_core.pipeline import VoicePipeline

from .errors import ServiceError

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

    def _load_once(self) -> VoicePipeline | None:
        with self._lock:
            if self._pipeline is None and self._load is not None and self._error is None:
                try:
                    self._pipeline = self._load(self._report)
                except Exception as error:  # shown to the user as the reason synthesis is off
                    self._error = f"{type(error).__name__}: {error}"
                    LOGGER.error("model loading failed: %s", self._error)
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
        if self._pipeline is not None:
            return f"ready: GPT-SoVITS {self._pipeline.version}"
        if self._error:
            return f"synthesis unavailable: {self._error}"
        return self._message

    def pipeline(self) -> VoicePipeline:
        """The loaded pipeline (waiting for a load in progress); ServiceError 503 when there is none."""
        pipeline = self._pipeline or self._load_once()
        if pipeline is None:
            raise ServiceError(
                f"synthesis is unavailable ({self._error}); start the app with --t2s/--sovits/--hubert/--bert "
                "(and --sv for v2Pro) pointing at local files, or with network access to download the weights",
                status=503,
            )
        return pipeline
