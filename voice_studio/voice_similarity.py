"""Speaker similarity of every synthesis: the output's verification embedding against the reference's.

The reference side is computed once per voice and kept (keyed by the voice, its reference
clip's hash and the weights), so a request pays for one embedding of its output only. The SV
model is the pipeline's own (v2Pro, v2ProPlus); a v2 pipeline has none, and then the server's
``--sv`` checkpoint, when given, is loaded for scoring alone (v2 synthesis never uses it).
Without either, similarity is None: "not available".
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from gsv_core.audio import load_reference_audio
from gsv_core.features.sv import SpeakerEncoder
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.features.similarity import output_similarity, reference_embedding
from gsv_core.speakers import SpeakerInfo, SpeakerLibrary
from gsv_core.engine.requests import SynthesisResult

LOGGER = logging.getLogger("voice_studio.similarity")
CACHED_VOICES = 256  # reference embeddings kept (192 floats each)


class SimilarityScorer:
    """Scores synthesized audio against its voice's reference; thread-safe."""

    def __init__(self, library: SpeakerLibrary, sv_checkpoint: Path | None = None) -> None:
        self.library = library
        self.sv_checkpoint = sv_checkpoint
        self._references: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
        self._own_encoder: SpeakerEncoder | None = None
        self._lock = threading.Lock()

    def encoder(self, pipeline: VoicePipeline) -> SpeakerEncoder | None:
        """The pipeline's SV model, else (v2) the ``--sv`` checkpoint's, loaded once; None when neither exists."""
        if pipeline.speaker_encoder is not None:
            return pipeline.speaker_encoder
        if self.sv_checkpoint is None:
            return None
        with self._lock:
            if self._own_encoder is None:
                self._own_encoder = SpeakerEncoder.from_checkpoint(self.sv_checkpoint, pipeline.device)
            return self._own_encoder

    def score(self, pipeline: VoicePipeline, info: SpeakerInfo, result: SynthesisResult) -> float | None:
        """Cosine similarity in [-1, 1] of ``result``'s audio to ``info``'s reference clip; None when
        no SV model is available or the output is too short. Never raises: a failure is logged
        (synthesis succeeded; the score is an extra) and gives None."""
        try:
            encoder = self.encoder(pipeline)
            if encoder is None:
                return None
            reference = self._reference(encoder, pipeline, info)
            return output_similarity(encoder, reference, result.audio, result.sample_rate)
        except Exception:
            LOGGER.warning("speaker similarity failed for voice %r", info.id, exc_info=True)
            return None

    def _reference(self, encoder: SpeakerEncoder, pipeline: VoicePipeline, info: SpeakerInfo) -> np.ndarray:
        """The reference clip's embedding (D,), from the cache or computed (outside the lock) and kept."""
        key = (info.id, info.audio_sha256, pipeline.weights_key)
        with self._lock:
            if key in self._references:
                self._references.move_to_end(key)
                return self._references[key]
        samples, rate = load_reference_audio(self.library.reference_path(info.id))
        embedding = reference_embedding(encoder, samples, rate, pipeline.sample_rate)
        with self._lock:
            self._references[key] = embedding
            while len(self._references) > CACHED_VOICES:
                self._references.popitem(last=False)
        return embedding
