"""Every hard limit of the public demo in one frozen dataclass, and the checks that apply them.

A request is checked completely here (types, ranges, finite numbers, lengths after text
normalization) before it may join a batch, so that nothing one visitor sends can fail the
requests served beside it. Defaults suit a public Space; each is a server flag (see
``voice_studio.server``) and documented in the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gsv_core.quality import DEFAULT_CER_THRESHOLD, DEFAULT_MAX_TRIES
from gsv_core.engine.requests import SynthesisOptions
from gsv_core.text.split import SPLIT_METHODS

from .errors import ServiceError

SEED_MAX = 2**32 - 1
# What an average phone lasts when spoken (generous, for the output-duration estimate).
SECONDS_PER_PHONE = 0.12
# Each take of a checked request costs a whole synthesis and a transcription.
MAX_QUALITY_TRIES = 10


@dataclass(frozen=True)
class Limits:
    # options: (low, high) inclusive
    top_k: tuple[int, int] = (1, 100)
    top_p: tuple[float, float] = (0.01, 1.0)
    temperature: tuple[float, float] = (0.05, 2.0)
    repetition_penalty: tuple[float, float] = (0.5, 2.0)
    speed: tuple[float, float] = (0.5, 2.0)
    max_fragment_interval_s: float = 2.0  # silence between segments
    # text and output
    max_phones_per_segment: int = 250  # also bounded by the BERT model's positions
    max_segments: int = 40
    max_output_s: float = 120.0  # expected length of one request's audio
    # uploads and request bodies
    max_upload_bytes: int = 20 * 2**20
    max_json_bytes: int = 64 * 2**10
    max_json_depth: int = 8
    max_decoded_audio_s: float = 30.0  # header duration past which an upload is not decoded
    max_recording_s: float = 180.0  # the same for a long recording (gsv_core.speakers.recordings refuses past 180 s itself)
    # a request body must arrive within this, plus a second per 32 KB received (voice_studio.http_guard), else 408
    body_timeout_s: float = 30.0
    # uploads Whisper transcribes at once (a three-minute recording holds the recognizer for a while);
    # past it, 503 busy (the quality check's transcriptions run inside their synthesis request's admission)
    max_transcriptions: int = 2
    # library: private voices per visitor key and per client (address), and in all at most
    # max_voices less a reserve kept for the admin's shared voices (see max_private_voices)
    max_voices_per_visitor: int = 5
    max_voices_per_client: int = 10
    max_voices: int = 500
    shared_voice_reserve: float = 0.2  # share of max_voices private voices may never take
    min_free_disk_bytes: int = 200 * 2**20  # shared voices; private ones need twice as much
    private_voice_ttl_s: float = 7 * 24 * 3600
    # the quality check (voice_studio.quality_check): takes per request at most, and the largest
    # character error rate a take may have to be kept without another try
    quality_max_tries: int = DEFAULT_MAX_TRIES
    quality_max_cer: float = DEFAULT_CER_THRESHOLD

    def __post_init__(self) -> None:
        if not 1 <= self.quality_max_tries <= MAX_QUALITY_TRIES:
            raise ValueError(f"quality_max_tries must be between 1 and {MAX_QUALITY_TRIES}, got {self.quality_max_tries}")
        if self.max_transcriptions < 1:
            raise ValueError(f"max_transcriptions must be at least 1, got {self.max_transcriptions}")
        if not self.body_timeout_s > 0:
            raise ValueError(f"body_timeout_s must be above 0, got {self.body_timeout_s}")
        if not 0 <= self.quality_max_cer <= 1:
            raise ValueError(f"quality_max_cer must be between 0 and 1, got {self.quality_max_cer}")
        if not 0 <= self.shared_voice_reserve <= 1:
            raise ValueError(f"shared_voice_reserve must be between 0 and 1, got {self.shared_voice_reserve}")
        if self.max_voices_per_client < 1:
            raise ValueError(f"max_voices_per_client must be at least 1, got {self.max_voices_per_client}")

    @property
    def max_private_voices(self) -> int:
        """Private voices the library takes in all: the rest stays free for shared ones, so that
        visitors (however many keys or addresses they use) never fill it for the admin."""
        return self.max_voices - math.ceil(round(self.max_voices * self.shared_voice_reserve, 9))

    @property
    def min_free_disk_for_private_bytes(self) -> int:
        """Free disk a private add needs (and below which the sweep trims private voices): twice
        the shared limit, so that private voices never take the disk the admin's adds need."""
        return 2 * self.min_free_disk_bytes


_FLOAT_OPTIONS = ("top_p", "temperature", "repetition_penalty", "speed", "fragment_interval")
_OPTION_FIELDS = frozenset({"top_k", "seed", "split_method", *_FLOAT_OPTIONS})


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServiceError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ServiceError(f"{name} must be a finite number")
    return float(value)


def _whole(name: str, value: Any) -> int:
    """An int, or a float with no fraction (UI sliders send 15.0); never a bool or 1.5."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError(f"{name} must be a whole number, got {value!r}"[:120])
    return value


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        shown = [str(v) if isinstance(v, int) else f"{v:g}" for v in (low, high, value)]
        raise ServiceError(f"{name} must be between {shown[0]} and {shown[1]}, got {shown[2][:40]}")


def check_options(raw: Mapping[str, Any] | None, limits: Limits) -> SynthesisOptions:
    """SynthesisOptions from visitor input (a JSON object or UI values), every field checked."""
    if raw is None:
        return SynthesisOptions()
    if not isinstance(raw, Mapping):
        raise ServiceError("options must be a JSON object")
    unknown = sorted(set(raw) - _OPTION_FIELDS)
    if unknown:
        raise ServiceError(f"unknown options: {', '.join(unknown)[:200]}")
    values: dict[str, Any] = {}
    if "top_k" in raw:
        values["top_k"] = _whole("top_k", raw["top_k"])
        _within("top_k", values["top_k"], *limits.top_k)
    for name in _FLOAT_OPTIONS:
        if name in raw:
            values[name] = _number(name, raw[name])
    for name in ("top_p", "temperature", "repetition_penalty", "speed"):
        if name in values:
            _within(name, values[name], *getattr(limits, name))
    if "fragment_interval" in values:
        _within("fragment_interval", values["fragment_interval"], 0.0, limits.max_fragment_interval_s)
    if raw.get("seed") is not None:
        values["seed"] = _whole("seed", raw["seed"])
        _within("seed", values["seed"], 0, SEED_MAX)
    if "split_method" in raw:
        if not isinstance(raw["split_method"], str) or raw["split_method"] not in SPLIT_METHODS:
            raise ServiceError(f"split_method must be one of {', '.join(SPLIT_METHODS)}")
        values["split_method"] = raw["split_method"]
    try:
        return SynthesisOptions(**values)
    except (TypeError, ValueError) as error:  # the core's own checks, plain English
        raise ServiceError(f"bad options: {error}") from error


def check_quality_flag(raw: Any) -> bool | None:
    """``quality_check`` of a request: true, false, or absent (None: the server's default); nothing else."""
    if raw is None or isinstance(raw, bool):
        return raw
    raise ServiceError(f"quality_check must be true or false, got {raw!r}"[:120])


def recheck_options(options: SynthesisOptions, limits: Limits) -> SynthesisOptions:
    """The same checks for options already built (the UI builds them from its sliders)."""
    fields = {name: getattr(options, name) for name in _OPTION_FIELDS}
    return check_options(fields, limits)


def check_segments(phone_counts: Sequence[int], norm_chars: Sequence[int], options: SynthesisOptions,
                   limits: Limits, max_norm_chars: int | None) -> float:
    """Refuse text whose segments are too long or too many, or whose audio would be too long.

    Returns the expected duration in seconds (the queue batches requests of similar length).
    """
    if len(phone_counts) > limits.max_segments:
        raise ServiceError(f"the text splits into {len(phone_counts)} segments; the limit is {limits.max_segments}"
                           " (use fewer sentences or another split method)")
    for phones, chars in zip(phone_counts, norm_chars):
        if phones > limits.max_phones_per_segment or (max_norm_chars is not None and chars > max_norm_chars):
            raise ServiceError(
                f"a sentence is too long to read in one go ({chars} characters, {phones} sounds once numbers and "
                f"symbols are spelled out; the limit is {min(limits.max_phones_per_segment, max_norm_chars or 10**9)}). "
                "Add punctuation to split it."
            )
    expected = sum(phone_counts) * SECONDS_PER_PHONE / options.speed + len(phone_counts) * options.fragment_interval
    if expected > limits.max_output_s:
        raise ServiceError(f"the audio would last about {expected:.0f} s; the limit is {limits.max_output_s:.0f} s")
    return expected
