"""Several references per voice, end to end through the command line, against the official cases.

``--aux-ref-audio`` adds upstream's auxiliary references; the decoder is conditioned on the
mean of every reference's global embedding. v2Pro gets each reference's recorded SV
features (``--sv-embedding`` once per reference), since the real SV checkpoint is not shipped.
"""

import json

import numpy as np
import pytest
import soundfile as sf

from gsv_core.__main__ import main
from gsv_core.audio import AudioError
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.speakers import SpeakerLibrary

CASES = {"v2_multiref": "s2G-tiny-v2.pth", "v2Pro_multiref": "s2G-tiny-v2Pro.pth"}
GE_ATOL = 1e-5
WAVE_ATOL = 1e-5


class Case:
    """One multi-reference case: its arrays (``aliases`` resolved) and inputs."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.data = np.load(folder / "intermediates.npz")
        info = json.loads((folder / "inputs.json").read_text())
        self.inputs, self.aliases = info["inputs"], info.get("aliases", {})

    def array(self, key: str) -> np.ndarray:
        return self.data[self.aliases.get(key, key)]

    def has(self, key: str) -> bool:
        return self.aliases.get(key, key) in self.data.files

    @property
    def aux_files(self) -> list[str]:
        return self.inputs["aux_ref_audio_paths"]


def _argv(case: Case, sovits: str, models, reference_dir, tmp_path) -> list[str]:
    inputs = case.inputs
    argv = [
        "synth", "--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / sovits),
        "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
        "--ref-audio", str(case.folder / inputs["ref_audio_path"]), "--ref-text", inputs["prompt_text"],
        "--ref-lang", inputs["prompt_lang"], "--text", inputs["text"], "--text-lang", inputs["text_lang"],
        "--top-k", str(inputs["top_k"]), "--top-p", str(inputs["top_p"]), "--temperature", str(inputs["temperature"]),
        "--repetition-penalty", str(inputs["repetition_penalty"]), "--split", inputs["text_split_method"],
        "--seed", str(inputs["seed"]), "--noise", str(tmp_path / "noise.npz"),
        "--official-data", str(reference_dir / "data"),
        "--out", str(tmp_path / "out.wav"), "--dump", str(tmp_path / "dump.npz"),
    ]
    for name in case.aux_files:
        argv += ["--aux-ref-audio", str(case.folder / name)]
    suffixes = [""] + [f"_aux{j}" for j in range(len(case.aux_files))]
    if case.has("sv_embedding"):  # main first, then the auxiliary references in order
        for suffix in suffixes:
            np.save(tmp_path / f"sv{suffix}.npy", case.array("sv_embedding" + suffix))
            argv += ["--sv-embedding", str(tmp_path / f"sv{suffix}.npy")]
    return argv


@pytest.mark.parametrize("name", list(CASES))
def test_cli_reproduces_the_multi_reference_case(name, reference_dir, tmp_path):
    case, models = Case(reference_dir / "cases" / name), reference_dir / "models"
    np.savez(tmp_path / "noise.npz", decode_noise_0=case.array("decode_noise"))
    assert main(_argv(case, CASES[name], models, reference_dir, tmp_path)) == 0
    dump = np.load(tmp_path / "dump.npz")
    for key in ("ge_per_ref", "ge_fused"):
        assert dump[key].shape == case.array(key).shape, key
        np.testing.assert_allclose(dump[key], case.array(key), rtol=0, atol=GE_ATOL, err_msg=key)
    assert dump["ge_per_ref"].shape[0] == 1 + len(case.aux_files)
    np.testing.assert_allclose(dump["flow_g"], case.array("flow_g"), rtol=0, atol=GE_ATOL)
    for key in ("prompt_semantic", "prompt_phones", "target_phones_0", "t2s_y_full"):
        np.testing.assert_array_equal(dump[key], case.array(key), err_msg=key)
    np.testing.assert_allclose(dump["refer_spec"], case.array("refer_spec"), rtol=0, atol=1e-4)
    np.testing.assert_allclose(dump["decode_out"], case.array("decode_out"), rtol=0, atol=WAVE_ATOL)
    ours, rate = sf.read(tmp_path / "out.wav", dtype="int16")
    official, official_rate = sf.read(case.folder / "out.wav", dtype="int16")
    assert rate == official_rate and ours.shape == official.shape
    assert np.abs(ours.astype(np.int32) - official).max() <= 1  # float noise may flip one LSB


def test_sv_embeddings_must_come_once_per_reference(reference_dir, tmp_path, capsys):
    case, models = Case(reference_dir / "cases" / "v2Pro_multiref"), reference_dir / "models"
    np.savez(tmp_path / "noise.npz", decode_noise_0=case.array("decode_noise"))
    argv = _argv(case, CASES["v2Pro_multiref"], models, reference_dir, tmp_path)
    last = len(argv) - argv[::-1].index("--sv-embedding") - 1
    assert main(argv[:last] + argv[last + 2:]) == 2  # two SV files for three references
    assert "once per reference" in capsys.readouterr().err
    assert not (tmp_path / "out.wav").exists()


@pytest.fixture(scope="module")
def v2_pipeline(reference_dir):
    models = reference_dir / "models"
    return VoicePipeline.from_paths(
        models / "s1-tiny.ckpt", models / CASES["v2_multiref"], models / "chinese-hubert-tiny",
        models / "chinese-roberta-tiny", official_data=reference_dir / "data",
    )


def test_the_speaker_library_prepares_a_voice_from_all_its_clips(v2_pipeline, reference_dir, tmp_path):
    """Stored clips go to prepare_speaker as aux_audio, in order: the official fused embedding."""
    case = Case(reference_dir / "cases" / "v2_multiref")
    library = SpeakerLibrary(tmp_path / "speakers")
    info = library.add(
        case.folder / case.inputs["ref_audio_path"], case.inputs["prompt_text"], case.inputs["prompt_lang"], "Multi",
        prepare=v2_pipeline.prepare_speaker, weights_key=v2_pipeline.weights_key,
        aux_audio=[case.folder / name for name in case.aux_files],
    )
    speaker = SpeakerLibrary(library.root).conditioning(
        info.id, prepare=v2_pipeline.prepare_speaker, weights_key=v2_pipeline.weights_key)
    np.testing.assert_allclose(speaker.reference_embeddings, case.array("ge_per_ref"), rtol=0, atol=GE_ATOL)
    np.testing.assert_allclose(speaker.global_embedding, case.array("ge_fused"), rtol=0, atol=GE_ATOL)
    np.testing.assert_array_equal(speaker.prompt_semantic, case.array("prompt_semantic"))


def test_bad_auxiliary_references_are_refused(v2_pipeline, reference_dir, tmp_path):
    main_clip = reference_dir / "cases" / "v2_multiref" / "ref.wav"
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32), 16000)
    with pytest.raises(AudioError, match="an auxiliary reference must be between 1 and 10 seconds"):
        v2_pipeline.prepare_speaker(main_clip, "", "zh", aux_audio=[short])
    with pytest.raises(ValueError, match="at most 7 auxiliary references"):
        v2_pipeline.prepare_speaker(main_clip, "", "zh", aux_audio=[main_clip] * 8)
    with pytest.raises(ValueError, match="must be a list"):
        v2_pipeline.prepare_speaker(main_clip, "", "zh", aux_audio=main_clip.read_bytes())
