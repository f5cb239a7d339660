"""What the app serves: the engine's result plus what the app adds to it.

:class:`~gsv_core.engine.requests.SynthesisResult` holds only what the engine computes; a served
request also has its speaker similarity and, when the quality check ran, its report. The engine's
fields read through, so UI, REST and the log use one object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsv_core.engine.requests import SegmentResult, SynthesisResult
from gsv_core.quality import QualityReport


@dataclass(frozen=True)
class ServedResult:
    result: SynthesisResult
    # speaker-verification cosine similarity of the output to the reference (None: no SV model, or too short)
    similarity: float | None = None
    quality: QualityReport | None = None  # the quality check's report, when it ran

    @property
    def sample_rate(self) -> int:
        return self.result.sample_rate

    @property
    def audio(self) -> np.ndarray:
        return self.result.audio

    @property
    def segments(self) -> tuple[SegmentResult, ...]:
        return self.result.segments

    @property
    def seed(self) -> int:
        return self.result.seed

    @property
    def timings(self) -> dict:
        return self.result.timings

    @property
    def duration_s(self) -> float:
        return self.result.duration_s
