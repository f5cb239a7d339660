"""Data preparation: a ``wav|speaker|lang|text`` list -> what both training stages read.

Per utterance, as the official ``prepare_datasets`` scripts compute it:

1. text (``1-get-text``): ``%`` -> ``-`` and ``￥`` -> ``,``, then the whole line is cleaned in
   its one language (no language segmentation): phones, word2ph, normalized text; Chinese
   lines also get phone-level BERT features (``hidden_states[-3]``, each character repeated
   per phone), every other language none (the GPT batches hold zeros there);
2. audio (``2-get-hubert-wav32k``): the clip at 32 kHz, ``x`` of peak ``m``; clips with
   ``m > 2.2`` are skipped. Two mixes of the peak-normalised and the raw signal:
   ``x / m * 0.95 * 0.5 * s + 0.5 * s * x``, with ``s = 32768`` for the 32 kHz training wav
   (truncated to int16) and ``s = 1145.14`` for HuBERT, whose input is that mix resampled to
   16 kHz by soxr HQ (``librosa.resample``); an utterance whose HuBERT output has a NaN is skipped;
3. semantic tokens (``3-get-semantic``): the SoVITS model's quantizer codes of those features;
4. v2Pro family (``2-get-sv``): the int16 wav / 32768, resampled to 16 kHz (torchaudio), its
   Kaldi filterbank and the speaker-verification network's pooled features.

An utterance that fails a step is left out and reported (the official scripts print the
error and go on). Entries may also carry their samples (utterances cut from a long
recording by :func:`gsv_core.speakers.recordings.plan_recording`, see :func:`entries_from_plan`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import torch

from ..audio import AudioError, load_mono, resample
from ..features.bert import BertFeatures
from ..features.ssl import HubertFeatures
from ..features.sv import SpeakerEncoder, sv_fbank
from ..models.sovits.model import SoVITS
from ..speakers.recordings import RecordingPlan
from ..text.cleaner import clean_text
from ..text.errors import TextError
from ..text.lexicon import Lexicon
from .prepared import PreparedUtterance

TRAINING_RATE = 32000  # the official preparation reads every clip at 32 kHz
HUBERT_RATE = 16000
SV_RATE = 16000
MAX_PEAK = 2.2  # clips louder than this are skipped
MIX_PEAK = 0.95  # "maxx": the normalised part's peak
MIX_ALPHA = 0.5  # share of the normalised signal in the mix
WAV_SCALE = 32768.0
HUBERT_SCALE = 1145.14  # the official HuBERT input scale (sic)
# the list's language labels (official v1 and v2 spellings) -> the cleaner's languages
LANGUAGES = {"ZH": "zh", "zh": "zh", "JP": "ja", "jp": "ja", "JA": "ja", "ja": "ja", "EN": "en", "en": "en",
             "En": "en", "KO": "ko", "Ko": "ko", "ko": "ko", "yue": "yue", "YUE": "yue", "Yue": "yue"}
BERT_LANGUAGE = "zh"


class DatasetListError(ValueError):
    """A training list line is not ``wav|speaker|lang|text``."""


@dataclass(frozen=True)
class ListEntry:
    """One utterance to prepare; ``audio`` = (samples, rate) when it does not come from a file."""

    wav_name: str  # the file name, also the utterance's name in the official files
    speaker: str
    lang: str
    text: str
    wav_path: Path | None = None
    audio: tuple[np.ndarray, int] | None = None

    @property
    def key(self) -> str:
        return Path(self.wav_name).stem


@dataclass(frozen=True)
class Skipped:
    wav_name: str
    reason: str


def parse_list(text: str, wav_dir: str | os.PathLike | None = None) -> tuple[list[ListEntry], list[Skipped]]:
    """The entries of a training list, and the lines skipped for an unsupported language.

    With ``wav_dir`` each file is looked up there by its base name (the official ``inp_wav_dir``);
    without it the path is taken as written (relative paths against the working directory).
    """
    entries, skipped, names = [], [], set()
    for number, line in enumerate(text.strip("\n").split("\n"), start=1):
        parts = line.split("|")
        if len(parts) != 4:
            raise DatasetListError(f"line {number} has {len(parts)} fields; a training list line is wav|speaker|lang|text")
        path, speaker, lang, utterance_text = parts
        path = path.strip().strip('"').strip()
        name = os.path.basename(path)
        if lang not in LANGUAGES:
            skipped.append(Skipped(name, f"language {lang!r} is not supported for training"))
            continue
        if Path(name).stem in names:
            raise DatasetListError(f"line {number}: a second file named {Path(name).stem!r}; file names must be unique")
        names.add(Path(name).stem)
        wav_path = Path(wav_dir) / name if wav_dir else Path(path)
        entries.append(ListEntry(name, speaker, lang, utterance_text, wav_path=wav_path))
    return entries, skipped


def entries_from_plan(plan: RecordingPlan, recording: np.ndarray, sample_rate: int, speaker: str, lang: str,
                      name: str) -> list[ListEntry]:
    """The usable utterances of a planned recording (main, auxiliaries, spare) with their transcripts."""
    usable = [u for u in (plan.main, *plan.auxiliaries, *plan.spare) if u is not None and u.transcript.strip()]
    usable.sort(key=lambda u: u.start_s)
    return [ListEntry(f"{name}_{index:03d}.wav", speaker, lang, u.transcript, audio=(u.samples(recording, sample_rate), sample_rate))
            for index, u in enumerate(usable)]


def mix_for_training(samples32k: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(hubert_input_16k (N,) float32, wav32k (n,) int16)`` of a 32 kHz clip, None when too loud.

    float32 arithmetic throughout, in the official order (see the module docstring).
    """
    audio = np.asarray(samples32k, dtype=np.float32)
    peak = np.abs(audio).max()
    if peak > MAX_PEAK:
        return None

    def mix(scale: float) -> np.ndarray:
        return (audio / peak * (MIX_PEAK * MIX_ALPHA * scale)) + ((1 - MIX_ALPHA) * scale) * audio

    hubert_input = librosa.resample(mix(HUBERT_SCALE), orig_sr=TRAINING_RATE, target_sr=HUBERT_RATE, res_type="soxr_hq")
    return hubert_input.astype(np.float32, copy=False), mix(WAV_SCALE).astype(np.int16)


def sv_inputs(wav32k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sv_wav16k (1, N), sv_fbank (frames, 80))`` of the int16 training wav, as ``2-get-sv`` reads it."""
    wav = torch.from_numpy(wav32k.astype(np.float32) / WAV_SCALE)[None]
    wav16k = resample(wav, TRAINING_RATE, SV_RATE)
    return wav16k.numpy(), sv_fbank(wav16k)[0].numpy()


class DatasetPreparer:
    """The models of the preparation and what they compute for one entry (see the module docstring).

    ``sovits`` gives the semantic tokens; ``speaker_encoder`` the v2Pro SV features (with
    ``with_sv`` and no encoder, the SV inputs are computed and the features left out).
    """

    def __init__(self, lexicon: Lexicon, bert: BertFeatures, hubert: HubertFeatures, sovits: SoVITS,
                 version: str = "v2", with_sv: bool = False, speaker_encoder: SpeakerEncoder | None = None) -> None:
        self.lexicon, self.bert, self.hubert, self.sovits = lexicon, bert, hubert, sovits
        self.version = version
        self.with_sv = with_sv or speaker_encoder is not None
        self.speaker_encoder = speaker_encoder

    def text_fields(self, entry: ListEntry) -> dict:
        """Phones, ids, word2ph, normalized text and (Chinese) BERT features of an entry."""
        language = LANGUAGES[entry.lang]
        text = entry.text.replace("%", "-").replace("￥", ",")
        cleaned = clean_text(text, language, self.version, self.lexicon)
        bert = None
        if language == BERT_LANGUAGE:
            bert = self.bert.phone_features(cleaned.norm_text, cleaned.word2ph).float().cpu().numpy()
            if bert.shape[1] != len(cleaned.phones):
                raise TextError(f"BERT features cover {bert.shape[1]} of {len(cleaned.phones)} phones")
        return {"phones": tuple(cleaned.phones), "phone_ids": np.asarray(cleaned.phone_ids, dtype=np.int64),
                "word2ph": cleaned.word2ph, "norm_text": cleaned.norm_text, "bert": bert}

    @torch.inference_mode()
    def audio_fields(self, samples32k: np.ndarray) -> dict | str:
        """HuBERT input and features, training wav, semantic tokens (+ SV); a reason string when skipped."""
        mixed = mix_for_training(samples32k)
        if mixed is None:
            return f"peak above {MAX_PEAK}"
        hubert_input, wav32k = mixed
        ssl = self.hubert.content(torch.from_numpy(hubert_input)).float().cpu()
        if torch.isnan(ssl).any():
            return "HuBERT features are NaN"
        codes = self.sovits.extract_latent(ssl)
        fields = {"hubert_input_16k": hubert_input, "ssl": ssl.numpy(), "wav32k": wav32k,
                  "semantic": codes[0, 0].cpu().numpy().astype(np.int64)}
        if self.with_sv:
            fields["sv_wav16k"], fields["sv_fbank"] = sv_inputs(wav32k)
            if self.speaker_encoder is not None:
                fields["sv_emb"] = self.speaker_encoder.sv_embedding(torch.from_numpy(fields["sv_wav16k"])).cpu().numpy()
        return fields

    def prepare(self, entry: ListEntry) -> PreparedUtterance | Skipped:
        """One entry prepared, or why it was left out."""
        try:
            samples = read_training_audio(entry)
            text = self.text_fields(entry)
        except (AudioError, TextError, ValueError) as error:
            return Skipped(entry.wav_name, str(error))
        audio = self.audio_fields(samples)
        if isinstance(audio, str):
            return Skipped(entry.wav_name, audio)
        return PreparedUtterance(key=entry.key, wav_name=entry.wav_name, speaker=entry.speaker, lang=entry.lang,
                                 text=entry.text, **text, **audio)

    def prepare_all(self, entries: Sequence[ListEntry],
                    progress: Callable[[int, int], None] | None = None) -> tuple[list[PreparedUtterance], list[Skipped]]:
        """Every entry in order; ``progress(done, total)`` after each."""
        prepared, skipped = [], []
        for done, entry in enumerate(entries, start=1):
            result = self.prepare(entry)
            (skipped if isinstance(result, Skipped) else prepared).append(result)
            if progress is not None:
                progress(done, len(entries))
        return prepared, skipped


def read_training_audio(entry: ListEntry) -> np.ndarray:
    """The entry's mono samples at 32 kHz, float32 in [-1, 1] for 16-bit files (x / 32768)."""
    if entry.audio is not None:
        samples, rate = entry.audio
    else:
        samples, rate = load_mono(entry.wav_path, max_seconds=float("inf"))
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise AudioError(f"{entry.wav_name} has no samples")
    if rate != TRAINING_RATE:
        samples = resample(torch.from_numpy(samples)[None], rate, TRAINING_RATE)[0].numpy()
    return samples


def prepare_list_file(list_path: str | os.PathLike, out_dir: str | os.PathLike, bert_dir: str | os.PathLike,
                      hubert_dir: str | os.PathLike, sovits_path: str | os.PathLike, wav_dir: str | os.PathLike | None = None,
                      sv_path: str | os.PathLike | None = None, official_data: str | os.PathLike | None = None,
                      device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> list[Skipped]:
    """Prepare a training list into ``out_dir`` (``prepared.npz`` / ``.json``); returns what was left out.

    The SoVITS file decides the phone table and whether speaker-verification features are
    needed (v2Pro family: then ``sv_path`` is required).
    """
    from ..models.sovits.loader import load_sovits
    from ..text.lexicon import load_lexicon
    from .prepared import save_prepared

    sovits = load_sovits(sovits_path, device=device)
    if sovits.version.uses_sv and sv_path is None:
        raise ValueError(f"{os.path.basename(os.fspath(sovits_path))} is a {sovits.version.name} model: "
                         "its training needs the speaker-verification checkpoint (sv_path)")
    entries, skipped = parse_list(Path(list_path).read_text(encoding="utf-8"), wav_dir)
    preparer = DatasetPreparer(
        load_lexicon(official_data=Path(official_data) if official_data else None),
        BertFeatures(bert_dir, device), HubertFeatures(hubert_dir, device), sovits, version=sovits.version.symbols,
        with_sv=sovits.version.uses_sv,
        speaker_encoder=SpeakerEncoder.from_checkpoint(sv_path, device) if sv_path is not None else None,
    )
    prepared, failed = preparer.prepare_all(entries, progress)
    if not prepared:
        raise ValueError(f"no utterance of {list_path} could be prepared: {[(f.wav_name, f.reason) for f in failed][:5]}")
    save_prepared(out_dir, prepared)
    return skipped + failed
