"""Reference clips -> a speaker's :class:`SpeakerConditioning`.

The main clip gives the prompt (its semantic codes, and the phones and BERT features of its
transcript) and, with any auxiliary clips, the voice: each clip gets its own global
embedding (the style encoder's output; for the Pro models prelu(style + projected SV
features), the SV model run per clip), and the decoder is conditioned on their mean, as
upstream does with ``aux_ref_audio_paths``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..audio import AudioSource, load_reference_audio, prepare_reference_audio, spec_audio, sv_input
from ..conditioning import MAX_REFERENCES, SpeakerConditioning
from ..features.bert import BertFeatures
from ..features.ssl import HubertFeatures
from ..features.similarity import reference_embedding
from ..features.sv import SpeakerEncoder
from ..models.sovits import fuse_global_embeddings
from ..spectrogram import linear_spectrogram
from ..text.frontend import PhoneSequence, TextFrontend
from ..versions import VersionInfo


class ReferenceEncoder:
    """Prepares speakers with the pipeline's models, which it only reads (thread-safe)."""

    def __init__(
        self, version: VersionInfo, sovits: torch.nn.Module, hubert: HubertFeatures, bert: BertFeatures,
        speaker_encoder: SpeakerEncoder | None, frontend: TextFrontend, device: torch.device,
    ) -> None:
        self.version, self.sovits, self.hubert, self.bert = version, sovits, hubert, bert
        self.speaker_encoder, self.frontend, self.device = speaker_encoder, frontend, device

    def prepare(
        self, audio: AudioSource, transcript: str | None, language: str, sv_embedding: np.ndarray | None = None,
        aux_audio: Sequence[AudioSource] = (), aux_sv_embeddings: Sequence[np.ndarray] | None = None,
    ) -> SpeakerConditioning:
        """See :meth:`gsv_core.engine.pipeline.VoicePipeline.prepare_speaker`."""
        aux_audio = self._check_references(sv_embedding, aux_audio, aux_sv_embeddings)
        samples, sample_rate = load_reference_audio(audio)
        aux_clips = [load_reference_audio(clip, auxiliary=True) for clip in aux_audio]  # all read before any model runs
        transcript = (transcript or "").strip()
        prompt = self.frontend.prompt_phonemes(transcript, language, self.version.symbols) if transcript else None
        rate, uses_sv = self.version.audio.sampling_rate, self.version.uses_sv
        main = prepare_reference_audio(samples, sample_rate, rate, with_sv=uses_sv)
        with torch.inference_mode():
            specs = [self._spectrogram(main.spec_audio)]
            sv_inputs = [main.sv_input]
            for clip_samples, clip_rate in aux_clips:
                clip = spec_audio(clip_samples, clip_rate, rate)
                specs.append(self._spectrogram(clip))
                sv_inputs.append(sv_input(clip, rate) if uses_sv else None)
            given = None if sv_embedding is None else [sv_embedding, *(aux_sv_embeddings or [])]
            svs = self._sv_embeddings(given, sv_inputs) if uses_sv else None
            per_reference = self.sovits.reference_embeddings(specs, svs)  # (R, 1, gin, 1)
            fused = fuse_global_embeddings(per_reference)
            arrays = self._prompt_arrays(main.hubert_input, prompt) if prompt is not None else {}
            if self.speaker_encoder is not None:  # what similarity scoring compares outputs with
                arrays["verification_embedding"] = reference_embedding(self.speaker_encoder, samples, sample_rate, rate)
        return SpeakerConditioning(
            version=self.version.name,
            ref_spec=_numpy(specs[0]),
            global_embedding=_numpy(fused),
            sv_embedding=_numpy(svs[0]) if uses_sv else None,
            reference_embeddings=_numpy(per_reference) if aux_clips else None,
            prompt_text=prompt.norm_text if prompt else "",
            prompt_language=language,
            **arrays,
        )

    def _check_references(
        self, sv_embedding: np.ndarray | None, aux_audio: Sequence[AudioSource],
        aux_sv_embeddings: Sequence[np.ndarray] | None,
    ) -> list[AudioSource]:
        """Refuse inconsistent arguments before any audio is read; returns the auxiliary clips as a list."""
        if isinstance(aux_audio, (str, bytes, bytearray)) or not isinstance(aux_audio, Sequence):
            raise ValueError("aux_audio must be a list of audio files (paths or bytes)")
        if 1 + len(aux_audio) > MAX_REFERENCES:
            raise ValueError(f"at most {MAX_REFERENCES - 1} auxiliary references, got {len(aux_audio)}")
        if not self.version.uses_sv:
            return list(aux_audio)
        if (sv_embedding is None) != (aux_sv_embeddings is None) and aux_audio:
            raise ValueError("give precomputed SV embeddings for every reference (sv_embedding and "
                             "aux_sv_embeddings) or for none")
        if aux_sv_embeddings is not None and len(aux_sv_embeddings) != len(aux_audio):
            raise ValueError(f"{len(aux_audio)} auxiliary references but {len(aux_sv_embeddings)} aux SV embeddings")
        if sv_embedding is None and self.speaker_encoder is None:
            raise ValueError(f"{self.version.name} needs a speaker-verification model or precomputed sv_embedding")
        return list(aux_audio)

    def _spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """(1, n) model-rate audio -> (1, 1025, frames) linear spectrogram on the device."""
        return linear_spectrogram(audio.to(self.device), self.version.audio)

    def _sv_embeddings(
        self, given: Sequence[np.ndarray] | None, sv_inputs: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """(1, 20480) SV features per reference: the ``given`` ones, else the SV model's on each (1, n16) input."""
        if given is not None:
            return [torch.as_tensor(np.asarray(sv, dtype=np.float32).reshape(1, -1), device=self.device) for sv in given]
        return [self.speaker_encoder.sv_embedding(clip.to(self.device)) for clip in sv_inputs]

    def _prompt_arrays(self, hubert_input: torch.Tensor, prompt: PhoneSequence) -> dict[str, np.ndarray]:
        """The prompt from the main clip: (T,) semantic codes, (P,) phone ids, (1024, P) BERT features."""
        content = self.hubert.content(hubert_input.to(self.device))
        return {
            "prompt_semantic": _numpy(self.sovits.extract_latent(content)[0, 0]),
            "prompt_phones": np.asarray(prompt.phone_ids, dtype=np.int64),
            "prompt_bert": _numpy(self.bert.sequence_features(prompt.parts)),
        }


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if tensor.is_floating_point() else tensor.detach().cpu().numpy()
