"""The registry of GPT-SoVITS model versions.

Every version-dependent fact lives in one row of ``VERSIONS``: which files on the Hub
it needs, which symbol table its text uses, its audio settings, whether it has a
speaker-verification stage and which decoder family it uses. Nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass

HUB_REPO_ID = "lj1995/GPT-SoVITS"
# A pinned commit keeps a deployed Space reproducible (the same bytes every start); pass
# ``revision=`` to the resolver to use another. This commit holds every file listed below
# (it is the one public GPT-SoVITS installers pin for v2ProPlus); it could not be checked
# from this offline workplace.
HUB_REVISION = "336b2ec4e8d4ac74740798dd40af44e74659ecaf"

HUBERT_DIR = "chinese-hubert-base"
BERT_DIR = "chinese-roberta-wwm-ext-large"
# The files of those two transformers folders that inference reads (nothing else is fetched).
HUBERT_FILES = ("config.json", "pytorch_model.bin")
BERT_FILES = ("config.json", "pytorch_model.bin", "tokenizer.json")


@dataclass(frozen=True)
class AudioSettings:
    """Signal-processing constants shared by the s2 decoder and the reference encoder."""

    sampling_rate: int = 32000
    filter_length: int = 2048
    hop_length: int = 640
    win_length: int = 2048

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1


@dataclass(frozen=True)
class VersionInfo:
    """One row of the registry: everything that differs between model versions."""

    name: str
    symbols: str  # "v1" or "v2": which phone table the text frontend uses
    t2s_file: str  # s1 checkpoint, relative to the Hub repository root
    sovits_file: str  # s2 checkpoint
    sv_file: str | None  # speaker-verification checkpoint (v2Pro family only)
    header: bytes  # the two bytes written over the zip magic of the s2 file
    audio: AudioSettings = AudioSettings()
    # which decoder turns semantic tokens into audio (gsv_core.engine.decoder_stage.DECODER_STAGES):
    # "vits", the SoVITS decoder of v2 and the v2Pro family; v3/v4 would name a CFM + vocoder family
    decoder: str = "vits"
    # training only: the official pretrained SoVITS discriminator (the s2G file's name with s2D),
    # and the periods of its multi-period discriminator (after the scale discriminator)
    sovits_discriminator_file: str = ""
    discriminator_periods: tuple[int, ...] = (2, 3, 5, 7, 11)

    @property
    def uses_sv(self) -> bool:
        return self.sv_file is not None

    def hub_files(self) -> tuple[str, ...]:
        """Single files this version needs from the Hub (the HF model folders come extra)."""
        files = [self.t2s_file, self.sovits_file]
        if self.sv_file:
            files.append(self.sv_file)
        return tuple(files)


_SV_FILE = "sv/pretrained_eres2netv2w24s4ep4.ckpt"
_PRO_PERIODS = (2, 3, 5, 7, 11, 17, 23)

VERSIONS: dict[str, VersionInfo] = {
    "v2": VersionInfo(
        name="v2",
        symbols="v2",
        t2s_file="gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt",
        sovits_file="gsv-v2final-pretrained/s2G2333k.pth",
        sv_file=None,
        header=b"PK",
        sovits_discriminator_file="gsv-v2final-pretrained/s2D2333k.pth",
    ),
    "v2Pro": VersionInfo(
        name="v2Pro",
        symbols="v2",
        t2s_file="s1v3.ckpt",
        sovits_file="v2Pro/s2Gv2Pro.pth",
        sv_file=_SV_FILE,
        header=b"05",
        sovits_discriminator_file="v2Pro/s2Dv2Pro.pth",
        discriminator_periods=_PRO_PERIODS,
    ),
    "v2ProPlus": VersionInfo(
        name="v2ProPlus",
        symbols="v2",
        t2s_file="s1v3.ckpt",
        sovits_file="v2Pro/s2Gv2ProPlus.pth",
        sv_file=_SV_FILE,
        header=b"06",
        sovits_discriminator_file="v2Pro/s2Dv2ProPlus.pth",
        discriminator_periods=_PRO_PERIODS,
    ),
}

DEFAULT_VERSION = "v2ProPlus"


def get_version(name: str) -> VersionInfo:
    """Look a version up by name, with a clear error for unknown ones."""
    try:
        return VERSIONS[name]
    except KeyError:
        known = ", ".join(VERSIONS)
        raise ValueError(f"unknown model version {name!r}; known versions: {known}") from None


def version_from_header(header: bytes) -> VersionInfo | None:
    """The version whose s2 file starts with these two bytes, or None for a plain zip."""
    for info in VERSIONS.values():
        if info.header == header and header != b"PK":
            return info
    return None
