"""Speaker similarity of every synthesis: the output's verification embedding against the reference's.

The reference side was computed once, when the voice was prepared: a speaker's conditioning
carries its reference's verification embedding (:attr:`SpeakerConditioning.verification_embedding`),
so a request pays for one embedding of its output only and the reference clip is never read
again. The SV model is the pipeline's own (v2Pro, v2ProPlus; for v2 the server's ``--sv``
checkpoint, loaded into the pipeline for scoring alone). Without one, similarity is None: "not
available".
"""

from __future__ import annotations

import logging

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisResult

LOGGER = logging.getLogger("voice_studio.similarity")


class SimilarityScorer:
    """Scores synthesized audio against its voice's reference; holds no state of its own."""

    def score(self, pipeline: VoicePipeline, speaker: SpeakerConditioning, result: SynthesisResult) -> float | None:
        """Cosine similarity in [-1, 1] of ``result``'s audio to ``speaker``'s reference clip; None when
        no SV model is available or the output is too short. Never raises: a failure is logged
        (synthesis succeeded; the score is an extra) and gives None."""
        try:
            return pipeline.similarity(speaker, result.audio, result.sample_rate)
        except Exception:
            LOGGER.warning("speaker similarity failed", exc_info=True)
            return None
