"""The speaker library: reference voices on disk and their conditioning, per weights.

    library = SpeakerLibrary("speakers")
    info = library.add(wav_bytes, "transcript", "en", "Alice", prepare=pipeline.prepare_speaker,
                       weights_key=pipeline.weights_key)
    conditioning = library.conditioning(info.id, prepare=..., weights_key=...)

A voice may have up to seven auxiliary clips (``library.add(..., aux_audio=[bytes or paths])``);
``prepare`` then also gets ``aux_audio=[their stored paths]``.
"""

from .library import PrepareFn, SpeakerLibrary
from .records import ClipInfo, SpeakerError, SpeakerInfo, SpeakerNotFound, SpeakerProblem, validate_speaker_id

__all__ = ["ClipInfo", "PrepareFn", "SpeakerError", "SpeakerInfo", "SpeakerLibrary", "SpeakerNotFound",
           "SpeakerProblem", "validate_speaker_id"]
