"""Several references fused into one voice, against the official multi-reference cases.

Upstream computes one global embedding per reference (main first, then the auxiliary ones)
and conditions everything on their mean; v2Pro adds each reference's own SV embedding.
"""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from gsv_core.audio import spec_audio, sv_input
from gsv_core.models.sovits import fuse_global_embeddings, load_sovits
from gsv_core.spectrogram import linear_spectrogram

CASES = {"v2_multiref": "s2G-tiny-v2.pth", "v2Pro_multiref": "s2G-tiny-v2Pro.pth"}
GE_ATOL = 1e-5
WAVE_ATOL = 1e-4  # README: decode_out within 1e-4 for the feature cases (measured diffs are ~1e-8)
AUDIO_ATOL = 1e-6  # resampled / normalised reference audio
SPEC_ATOL = 1e-4


class Case:
    """One multi-reference case: its arrays (aliases resolved), inputs.json and model."""

    def __init__(self, folder, model) -> None:
        self.folder, self.model = folder, model
        self.data = np.load(folder / "intermediates.npz")
        self.info = json.loads((folder / "inputs.json").read_text())
        self.aliases = self.info.get("aliases", {})

    def array(self, key: str) -> np.ndarray:
        return self.data[self.aliases.get(key, key)]

    def tensor(self, key: str) -> torch.Tensor:
        return torch.from_numpy(self.array(key))

    @property
    def suffixes(self) -> list[str]:
        """'' for the main reference, then '_aux<j>' in the order of aux_ref_audio_paths."""
        return [""] + [f"_aux{j}" for j in range(len(self.info["inputs"]["aux_ref_audio_paths"]))]

    @property
    def wav_files(self) -> list[str]:
        return [self.info["inputs"]["ref_audio_path"], *self.info["inputs"]["aux_ref_audio_paths"]]

    def specs(self) -> list[torch.Tensor]:
        return [self.tensor("refer_spec" + s) for s in self.suffixes]

    def svs(self) -> list[torch.Tensor] | None:
        return [self.tensor("sv_embedding" + s) for s in self.suffixes] if self.model.version.uses_sv else None


@pytest.fixture(scope="module", params=list(CASES))
def case(request, reference_dir, reference_models_dir):
    return Case(reference_dir / "cases" / request.param, load_sovits(reference_models_dir / CASES[request.param]))


def _close(actual: torch.Tensor, expected: np.ndarray, atol: float) -> None:
    assert tuple(actual.shape) == expected.shape
    np.testing.assert_allclose(actual.detach().float().numpy(), expected, rtol=0, atol=atol)


def test_every_reference_spectrogram_from_its_wav(case):
    """Main and auxiliary wavs (32 and 22.05 kHz) through our audio path give the recorded spectrograms."""
    for suffix, name in zip(case.suffixes, case.wav_files):
        samples, rate = sf.read(case.folder / name, dtype="float32")
        audio = spec_audio(samples, rate)
        _close(audio, case.array("ref_audio_for_spec" + suffix), AUDIO_ATOL)
        _close(linear_spectrogram(audio), case.array("refer_spec" + suffix), SPEC_ATOL)
        if case.model.version.uses_sv:
            _close(sv_input(audio), case.array("sv_input_wav16k" + suffix), AUDIO_ATOL)


def test_per_reference_and_fused_embeddings(case):
    with torch.inference_mode():
        per_reference = case.model.reference_embeddings(case.specs(), case.svs())
        fused = case.model.fused_global_embedding(case.specs(), case.svs())
        for index, suffix in enumerate(case.suffixes):
            _close(case.model.style_encoder(case.specs()[index]), case.array("ge_ref_enc" + suffix), GE_ATOL)
            if case.model.version.uses_sv:
                _close(per_reference[index], case.array("ge_after_prelu" + suffix), GE_ATOL)
    _close(per_reference, case.array("ge_per_ref"), GE_ATOL)
    _close(fused, case.array("ge_fused"), GE_ATOL)
    # a speaker library stores the per-reference embeddings; their mean is the same voice
    assert torch.equal(fuse_global_embeddings(list(per_reference)), fused)
    assert torch.equal(fuse_global_embeddings(torch.from_numpy(case.array("ge_per_ref"))),
                       torch.from_numpy(case.array("ge_per_ref")).mean(0))


def test_decode_with_the_fused_embedding(case):
    codes, phones, noise = case.tensor("decode_codes"), case.tensor("decode_text"), case.tensor("decode_noise")
    with torch.inference_mode():
        fused = case.model.fused_global_embedding(case.specs(), case.svs())
        if case.model.version.uses_sv:  # the text encoder sees ge_to512 of the fused embedding
            _close(case.model.text_ge(fused).transpose(1, 2), case.array("ge512"), GE_ATOL)
        from_ours = case.model.decode(codes, phones, fused, noise=noise)
        from_recorded = case.model.decode(codes, phones, case.tensor("ge_fused"), noise=noise)
    _close(from_ours, case.array("decode_out"), WAVE_ATOL)
    _close(from_recorded, case.array("decode_out"), WAVE_ATOL)


def test_reference_lists_are_checked(case):
    specs = case.specs()
    with pytest.raises(ValueError, match="at least one"):
        case.model.reference_embeddings([])
    with pytest.raises(ValueError, match="SV embeddings"):
        case.model.reference_embeddings(specs, [torch.zeros(1, 20480)])
    with pytest.raises(ValueError, match="per-reference embeddings"):
        fuse_global_embeddings(torch.zeros(0, 1, 64, 1))
