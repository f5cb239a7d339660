"""Long recordings -> reference utterances: cut at pauses, drop the unusable, rank the rest.

A voice is best cloned from several clean 3-10 s sentences of one recording: the main
reference conditions the GPT stage (its transcript is the prompt), auxiliary references
only add their timbre. :func:`plan_recording` cuts a mono recording of up to
``MAX_RECORDING_SECONDS`` into utterances, either along a recognizer's timestamps or, without
them, at silences found by energy (``librosa.effects.split``), merges neighbours separated
by short pauses (breaths, commas), splits what is still too long at its longest pauses,
drops what cannot serve as a reference and scores the rest.

Pure functions over numpy arrays (and :func:`load_recording` to read an upload); no model runs here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import librosa
import numpy as np

from ..audio import SILENCE_PEAK, AudioSource, header_duration, load_mono

MAX_RECORDING_SECONDS = 180.0
MIN_UTTERANCE_SECONDS = 3.0  # the reference length the models accept (gsv_core.audio)
MAX_UTTERANCE_SECONDS = 10.0
# Kept utterances stay this far inside those bounds, so their samples pass the reference check
# (``gsv_core.audio.check_reference_samples``) after rounding to samples and resampling.
LENGTH_MARGIN_SECONDS = 0.01
# Pauses shorter than this are breaths or commas inside a sentence: their neighbours merge.
MERGE_PAUSE_SECONDS = 0.35
# Speech is what lies within this many dB of the recording's loud frames (the 95th percentile
# of frame power, not the loudest one, so one shout or clipped burst does not mute the rest).
SILENCE_TOP_DB = 40.0
LOUD_PERCENTILE = 95
FRAME_SECONDS = 0.025
HOP_SECONDS = 0.010
# Silence kept on either side of an utterance, so cuts never clip a word's attack or decay.
EDGE_PAD_SECONDS = 0.05
# A sample at or above this magnitude sits at full scale; more than this fraction of them clips.
FULL_SCALE = 0.99
MAX_CLIPPED_FRACTION = 1e-3
# The loud frames (95th percentile RMS) of usable speech are louder than this.
MIN_LOUDNESS_DBFS = -35.0
MAX_AUXILIARIES = 3
SENTENCE_ENDS = ".!?。！？…"


class Problem(str, enum.Enum):
    """Why an utterance cannot be a reference (``DROPPING``) or is a weaker one."""

    TOO_SHORT = "too short"
    TOO_LONG = "too long"
    SILENT = "silent"
    CLIPPED = "clipped"
    TOO_QUIET = "too quiet"
    INCOMPLETE = "not a complete sentence"
    LONG_PAUSE = "long pause inside"


DROPPING = frozenset({Problem.TOO_SHORT, Problem.TOO_LONG, Problem.SILENT, Problem.CLIPPED, Problem.TOO_QUIET})


class RecordingError(ValueError):
    """The recording cannot be planned at all (too long, empty, not mono, not finite, silent)."""


@dataclass(frozen=True)
class Utterance:
    """One stretch of the recording, ``[start_s, end_s)`` seconds from its start.

    ``score`` is in [0, 1] (higher is a better reference; 0 for dropped ones);
    ``problems`` lists every :class:`Problem` found, dropping ones first.
    """

    start_s: float
    end_s: float
    transcript: str
    score: float
    problems: tuple[Problem, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def usable(self) -> bool:
        return not DROPPING.intersection(self.problems)

    def samples(self, recording: np.ndarray, sample_rate: int) -> np.ndarray:
        """This utterance's samples (n,) out of the whole ``recording`` (N,)."""
        return recording[int(round(self.start_s * sample_rate)):int(round(self.end_s * sample_rate))]


@dataclass(frozen=True)
class RecordingPlan:
    """``main``: the best complete clean sentence (None when nothing is usable);
    ``auxiliaries``: the next best usable utterances, best first, at most ``MAX_AUXILIARIES``;
    ``dropped``: the unusable ones in time order, each with its problems; ``spare``: usable
    ones beyond the auxiliaries, best first (a UI may offer them instead)."""

    main: Utterance | None
    auxiliaries: tuple[Utterance, ...]
    dropped: tuple[Utterance, ...]
    spare: tuple[Utterance, ...] = ()


Piece = tuple[float, float, str]  # (start_s, end_s, text): one stretch of speech


@dataclass(frozen=True)
class _Span:
    """Speech pieces merged into one candidate, in time order."""

    parts: tuple[Piece, ...]

    @property
    def start(self) -> float:
        return self.parts[0][0]

    @property
    def end(self) -> float:
        return self.parts[-1][1]

    @property
    def text(self) -> str:
        text = ""
        for _, _, piece in self.parts:
            piece = piece.strip()
            text = f"{text} {piece}" if _spaced(text, piece) else text + piece
        return text


def plan_recording(
    samples: np.ndarray,
    sample_rate: int,
    segments: Sequence[Piece] | None = None,
    max_auxiliaries: int = MAX_AUXILIARIES,
) -> RecordingPlan:
    """Cut ``samples`` (N,) mono float at ``sample_rate`` into ranked reference utterances.

    ``segments``: optional (start_s, end_s, text) pieces from a recognizer (Whisper segments
    or words, see ``voice_studio.transcriber``); the cuts then follow the recognizer, and a
    piece ending in sentence punctuation never merges with the next. Without them the cuts
    fall at silences, each utterance padded by ``EDGE_PAD_SECONDS``, and transcripts are "".
    Raises RecordingError for a recording that cannot be planned at all.
    """
    samples = _check_recording(samples, sample_rate)
    duration = samples.size / sample_rate
    if segments:
        pieces = [(max(0.0, float(s)), min(float(e), duration), str(t)) for s, e, t in segments]
        pad = 0.0
    else:
        pieces = [(s / sample_rate, e / sample_rate, "") for s, e in _speech_intervals(samples, sample_rate)]
        pad = EDGE_PAD_SECONDS
    pieces = [piece for piece in pieces if piece[1] > piece[0]]
    spans = [part for span in _merge(pieces) for part in _split_long(span)]
    utterances = [_assess(span, samples, sample_rate, pad) for span in spans]
    return _choose(utterances, max_auxiliaries)


def plan_cuts(
    samples: np.ndarray,
    sample_rate: int,
    cuts: Sequence[Piece],
    max_auxiliaries: int = MAX_AUXILIARIES,
) -> RecordingPlan:
    """Assess and rank utterances whose cuts are already fixed, e.g. a plan's own cuts once a
    person has typed their transcripts: each (start_s, end_s, text) of ``samples`` (N,) becomes
    one utterance as it is (no merging, splitting or padding). Raises RecordingError as
    :func:`plan_recording` does, and for a cut outside the recording or of no length.
    """
    samples = _check_recording(samples, sample_rate)
    duration = samples.size / sample_rate
    for start, end, _ in cuts:
        if not 0.0 <= start < end <= duration + 1e-6:
            raise RecordingError(f"the cut {start:.2f}-{end:.2f} s lies outside the {duration:.2f} s recording")
    spans = [_Span(((float(start), float(end), str(text)),)) for start, end, text in cuts]
    return _choose([_assess(span, samples, sample_rate, 0.0) for span in spans], max_auxiliaries)


def load_recording(source: AudioSource, max_seconds: float = MAX_RECORDING_SECONDS) -> tuple[np.ndarray, int]:
    """Read an uploaded recording (any format ``gsv_core.audio`` reads; a path or bytes) of at
    most ``max_seconds`` (a server's own bound; never past ``MAX_RECORDING_SECONDS``), refused by
    its header before decoding where the header says.

    Returns mono float32 samples (n,) and the file's rate. Raises AudioError for an
    unreadable file and RecordingError (both ValueErrors) for one that cannot be planned.
    """
    seconds = header_duration(source)
    if seconds is not None and seconds > max_seconds:  # refused before decoding
        raise RecordingError(_too_long(seconds, max_seconds))
    samples, sample_rate = load_mono(source, max_seconds=MAX_RECORDING_SECONDS)
    samples = _check_recording(samples, sample_rate)
    if samples.size / sample_rate > max_seconds:
        raise RecordingError(_too_long(samples.size / sample_rate, max_seconds))
    return samples, sample_rate


def _too_long(seconds: float, limit: float = MAX_RECORDING_SECONDS) -> str:
    return f"the recording is {seconds:.0f} s long; recordings of at most {limit:.0f} s are accepted"


def _check_recording(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise RecordingError(f"expected a mono recording of shape (n,), got shape {samples.shape}")
    if samples.size == 0:
        raise RecordingError("the recording contains no audio samples")
    seconds = samples.size / sample_rate
    if seconds > MAX_RECORDING_SECONDS:
        raise RecordingError(_too_long(seconds))
    if not np.isfinite(samples).all():
        raise RecordingError("the recording contains NaN or infinite sample values")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise RecordingError("the recording is silent (its peak is below -60 dBFS)")
    return samples


def _frame_params(sample_rate: int) -> tuple[int, int]:
    return max(1, int(FRAME_SECONDS * sample_rate)), max(1, int(HOP_SECONDS * sample_rate))


def _speech_intervals(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(k, 2) sample bounds of the stretches within ``SILENCE_TOP_DB`` of the loud frames."""
    frame, hop = _frame_params(sample_rate)
    return librosa.effects.split(samples, top_db=SILENCE_TOP_DB, ref=_loud_level, frame_length=frame, hop_length=hop)


def _loud_level(power: np.ndarray) -> float:
    """The reference level of ``librosa.effects.split``: a loud, not the loudest, frame power."""
    return float(np.percentile(power, LOUD_PERCENTILE))


def _ends_sentence(text: str) -> bool:
    stripped = text.rstrip(" \"'”’)）」』")
    return bool(stripped) and stripped[-1] in SENTENCE_ENDS


def _spaced(left: str, right: str) -> bool:
    """Whether two transcript pieces join with a space (not between CJK characters)."""
    if not left or not right or left[-1].isspace() or right[0].isspace():
        return False
    return not (_is_cjk(left[-1]) or _is_cjk(right[0]))


def _is_cjk(char: str) -> bool:
    return "\u3000" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" or "\uff00" <= char <= "\uffef"


def _merge(pieces: list[Piece]) -> list[_Span]:
    """Join neighbours closer than ``MERGE_PAUSE_SECONDS``, unless the first ends a sentence."""
    spans: list[_Span] = []
    for piece in pieces:
        if spans and piece[0] - spans[-1].end < MERGE_PAUSE_SECONDS and not _ends_sentence(spans[-1].text):
            spans[-1] = _Span(spans[-1].parts + (piece,))
        else:
            spans.append(_Span((piece,)))
    return spans


def _split_long(span: _Span) -> list[_Span]:
    """A span longer than ``MAX_UTTERANCE_SECONDS`` cut at its longest pause, recursively.

    Preferring cuts after sentence ends would be nicer, but the longest pause is where a
    speaker breathes between phrases, and each piece keeps its own text. A single piece
    that is still too long stays whole (and is dropped as too long).
    """
    if span.end - span.start <= MAX_UTTERANCE_SECONDS or len(span.parts) < 2:
        return [span]
    gaps = [b[0] - a[1] for a, b in zip(span.parts, span.parts[1:])]
    cut = int(np.argmax(gaps)) + 1
    return _split_long(_Span(span.parts[:cut])) + _split_long(_Span(span.parts[cut:]))


@dataclass(frozen=True)
class _Measures:
    """Signal measures of one utterance: clipped-sample fraction, loud-frame level (dBFS),
    level spread of the voiced frames (dB), fraction and longest run (s) of inner pause."""

    peak: float
    clipped_fraction: float
    loudness_dbfs: float
    level_spread_db: float
    pause_fraction: float
    longest_pause_s: float


def _measure(audio: np.ndarray, sample_rate: int) -> _Measures:
    frame, hop = _frame_params(sample_rate)
    if audio.size < frame:
        audio = np.pad(audio, (0, frame - audio.size))
    rms = librosa.feature.rms(y=audio, frame_length=frame, hop_length=hop, center=False)[0]
    level = 20 * np.log10(np.maximum(rms, 1e-10))
    loudness = float(np.percentile(level, LOUD_PERCENTILE))
    voiced = np.flatnonzero(level > loudness - SILENCE_TOP_DB)
    inner = level[voiced[0]:voiced[-1] + 1] if voiced.size else level[:0]
    pause = inner <= loudness - SILENCE_TOP_DB
    longest = 0
    run = 0
    for is_pause in pause:
        run = run + 1 if is_pause else 0
        longest = max(longest, run)
    return _Measures(
        peak=float(np.abs(audio).max()),
        clipped_fraction=float(np.mean(np.abs(audio) >= FULL_SCALE)),
        loudness_dbfs=loudness,
        level_spread_db=float(np.std(level[voiced])) if voiced.size else 0.0,
        pause_fraction=float(pause.mean()) if pause.size else 0.0,
        longest_pause_s=longest * hop / sample_rate,
    )


def _problems(duration: float, text: str, m: _Measures) -> tuple[Problem, ...]:
    checks = [
        (duration < MIN_UTTERANCE_SECONDS + LENGTH_MARGIN_SECONDS, Problem.TOO_SHORT),
        (duration > MAX_UTTERANCE_SECONDS - LENGTH_MARGIN_SECONDS, Problem.TOO_LONG),
        (m.peak < SILENCE_PEAK, Problem.SILENT),
        (m.peak >= SILENCE_PEAK and m.clipped_fraction > MAX_CLIPPED_FRACTION, Problem.CLIPPED),
        (SILENCE_PEAK <= m.peak and m.loudness_dbfs < MIN_LOUDNESS_DBFS, Problem.TOO_QUIET),
        (bool(text) and not _ends_sentence(text), Problem.INCOMPLETE),
        (m.longest_pause_s >= MERGE_PAUSE_SECONDS, Problem.LONG_PAUSE),
    ]
    return tuple(problem for failed, problem in checks if failed)


# How much each quality counts in the score (they sum to 1).
SCORE_WEIGHTS = {"stable": 0.25, "unclipped": 0.2, "pause_free": 0.2, "complete": 0.2, "length": 0.15}


def _score(duration: float, text: str, m: _Measures) -> float:
    """A reference's quality in [0, 1]: steady level, no clipping, no pauses, a whole
    sentence (unknown without a transcript: 0.5), and a length of 4 to 8 s."""
    parts = {
        "stable": float(np.clip(1 - m.level_spread_db / 15.0, 0, 1)),
        "unclipped": float(np.clip(1 - m.clipped_fraction / MAX_CLIPPED_FRACTION, 0, 1)),
        "pause_free": float(np.clip(1 - 2 * m.pause_fraction, 0, 1)),
        "complete": 0.5 if not text else float(_ends_sentence(text)),
        "length": 1.0 if 4.0 <= duration <= 8.0 else 0.5,
    }
    return round(sum(SCORE_WEIGHTS[name] * value for name, value in parts.items()), 4)


def _assess(span: _Span, samples: np.ndarray, sample_rate: int, pad: float) -> Utterance:
    total = samples.size / sample_rate
    start = round(float(max(0.0, span.start - pad)), 3)
    end = round(float(min(total, span.end + pad)), 3)
    audio = samples[int(round(start * sample_rate)):int(round(end * sample_rate))]
    measures = _measure(audio, sample_rate)
    text = span.text
    problems = _problems(end - start, text, measures)
    usable = not DROPPING.intersection(problems)
    score = _score(end - start, text, measures) if usable else 0.0
    return Utterance(start, end, text, score, problems)


def _choose(utterances: list[Utterance], max_auxiliaries: int) -> RecordingPlan:
    """The best complete sentence as main (any usable one when none is complete), the next
    best as auxiliaries; the unusable ones are returned as dropped."""
    usable = sorted((u for u in utterances if u.usable), key=lambda u: (-u.score, u.start_s))
    complete = [u for u in usable if Problem.INCOMPLETE not in u.problems]
    main = (complete or usable or [None])[0]
    others = [u for u in usable if u is not main]
    return RecordingPlan(
        main=main,
        auxiliaries=tuple(others[:max_auxiliaries]),
        dropped=tuple(u for u in utterances if not u.usable),
        spare=tuple(others[max_auxiliaries:]),
    )
