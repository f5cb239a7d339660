"""A long recording's plan as the page and REST show it, and the visitor's choice checked strictly.

``gsv_core.speakers.recordings`` cuts and ranks utterances; here they become numbered rows in time
order, each with a role: ``main`` (the prompt: 3-10 s, its transcript is stored), ``aux``
(auxiliary references: only their timbre counts), ``spare`` (usable, not used) or
``dropped`` (unusable, with its problems). A visitor may correct transcripts and pick
another main; :func:`chosen_cuts` reads that choice back (a REST client sends the plan's
rows, edited, as JSON).

A transcript the visitor typed for the whole recording replaces Whisper: the recording is
cut at its silences and the transcript's sentences go to the utterances in order when
there are as many sentences as utterances (dropped ones included: "Yes." is a sentence
even if too short to use). Otherwise every utterance keeps an empty transcript and the
plan's ``note`` asks for one per utterance (the service refuses to store a main reference
without words when the visitor gave a transcript).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gsv_core.speakers.recordings import DROPPING, MAX_AUXILIARIES, SENTENCE_ENDS, RecordingPlan, Utterance
from gsv_core.speakers.records import MAX_AUX_CLIPS

from .errors import ServiceError

ROLES = ("main", "aux", "spare", "dropped")
MAX_ROWS = 500  # a 180 s recording cut at 0.35 s pauses has far fewer utterances
# What a REST client may send per utterance: the plan's own rows, edited. Times and role are required.
_REQUIRED = frozenset({"start_s", "end_s", "role"})
_ALLOWED = _REQUIRED | {"id", "transcript", "problems", "score"}
_SENTENCE = re.compile(rf"[^{SENTENCE_ENDS}]+(?:[{SENTENCE_ENDS}]+[\"'”’)）」』]*|$)")


@dataclass(frozen=True)
class PlannedUtterance:
    """One row of the plan: ``id`` counts from 1 in time order; times in seconds."""

    id: int
    start_s: float
    end_s: float
    transcript: str
    problems: tuple[str, ...]
    score: float
    role: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "start_s": self.start_s, "end_s": self.end_s, "transcript": self.transcript,
                "problems": list(self.problems), "score": self.score, "role": self.role}


@dataclass(frozen=True)
class RecordingView:
    """A whole plan: ``language`` is the one given or the one Whisper heard (an app code, or
    None); ``transcribed_by`` is "whisper" or "visitor"; ``note`` says what the visitor must do."""

    duration_s: float
    utterances: tuple[PlannedUtterance, ...]
    language: str | None
    transcribed_by: str
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "language": self.language, "transcribed_by": self.transcribed_by,
                "note": self.note, "utterances": [u.to_json() for u in self.utterances]}

    @property
    def main(self) -> PlannedUtterance | None:
        return next((u for u in self.utterances if u.role == "main"), None)


@dataclass(frozen=True)
class Cut:
    """A stretch of the recording to store: [start_s, end_s) and what is said in it."""

    start_s: float
    end_s: float
    transcript: str

    def samples(self, recording: np.ndarray, sample_rate: int) -> np.ndarray:
        """This cut's samples (n,) out of the whole ``recording`` (N,)."""
        return recording[int(round(self.start_s * sample_rate)):int(round(self.end_s * sample_rate))]


def plan_rows(plan: RecordingPlan) -> tuple[PlannedUtterance, ...]:
    """Every utterance of ``plan`` as a numbered row in time order, with its role."""
    roles = {id(u): role for role, group in (("main", [plan.main] if plan.main else []), ("aux", plan.auxiliaries),
                                             ("spare", plan.spare), ("dropped", plan.dropped)) for u in group}
    everything: list[Utterance] = sorted(
        [u for group in ([plan.main] if plan.main else [], plan.auxiliaries, plan.spare, plan.dropped) for u in group],
        key=lambda u: u.start_s)
    return tuple(PlannedUtterance(number, u.start_s, u.end_s, u.transcript, tuple(p.value for p in u.problems),
                                  u.score, roles[id(u)]) for number, u in enumerate(everything, 1))


def split_sentences(transcript: str) -> list[str]:
    """The transcript's sentences, each ending at ``.!?。！？…`` (and closing quotes), stripped."""
    return [piece.strip() for piece in _SENTENCE.findall(transcript or "") if piece.strip()]


def spread_note(sentences: int, utterances: int) -> str | None:
    """What to tell a visitor whose transcript could not be spread over the utterances."""
    if sentences == utterances:
        return None
    return (f"the transcript has {sentences} sentence{'s' * (sentences != 1)} but the recording was cut into "
            f"{utterances} utterance{'s' * (utterances != 1)}: type each utterance's transcript")


def with_main(rows: Sequence[PlannedUtterance], main_id: int) -> tuple[PlannedUtterance, ...]:
    """The rows with ``main_id`` as main and the best-scored other usable rows as auxiliaries."""
    chosen = next((row for row in rows if row.id == main_id), None)
    if chosen is None:
        raise ServiceError(f"there is no utterance {main_id}")
    if not _usable(chosen):
        raise ServiceError(f"utterance {main_id} cannot be the main reference ({', '.join(chosen.problems)})")
    ranked = sorted((row for row in rows if _usable(row) and row.id != main_id), key=lambda row: (-row.score, row.id))
    aux = {row.id for row in ranked[:MAX_AUXILIARIES]}

    def role(row: PlannedUtterance) -> str:
        if row.id == main_id:
            return "main"
        return "aux" if row.id in aux else ("spare" if _usable(row) else "dropped")

    return tuple(PlannedUtterance(row.id, row.start_s, row.end_s, row.transcript, row.problems, row.score, role(row))
                 for row in rows)


def _usable(row: PlannedUtterance) -> bool:
    return not {problem.value for problem in DROPPING}.intersection(row.problems)


def chosen_cuts(utterances: Any, duration_s: float) -> tuple[Cut, list[Cut]]:
    """The main and auxiliary cuts of a visitor's rows (parsed JSON), every field checked.

    Exactly one row has role "main"; at most ``MAX_AUX_CLIPS`` have "aux"; "spare" and
    "dropped" rows are ignored. Times are finite numbers with 0 <= start < end <= the
    recording's length (the clip checks themselves, 3-10 s and 1-10 s, come when storing).
    """
    if not isinstance(utterances, list) or not utterances:
        raise ServiceError("utterances must be a non-empty JSON list of {start_s, end_s, role, transcript}")
    if len(utterances) > MAX_ROWS:
        raise ServiceError(f"at most {MAX_ROWS} utterances, got {len(utterances)}")
    cuts = [(_role(row, number), _cut(row, number, duration_s)) for number, row in enumerate(utterances, 1)]
    mains = [cut for role, cut in cuts if role == "main"]
    aux = [cut for role, cut in cuts if role == "aux"]
    if len(mains) != 1:
        raise ServiceError(f"exactly one utterance must have the role 'main', got {len(mains)}")
    if len(aux) > MAX_AUX_CLIPS:
        raise ServiceError(f"a voice takes at most {MAX_AUX_CLIPS} auxiliary clips, got {len(aux)} with the role 'aux'")
    return mains[0], aux


def _role(row: Any, number: int) -> str:
    if not isinstance(row, Mapping):
        raise ServiceError(f"utterance {number} must be a JSON object")
    missing, unknown = sorted(_REQUIRED - set(row)), sorted(set(row) - _ALLOWED)
    if missing or unknown:
        wrong = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)[:100]}"]
                                                                           if unknown else [])
        raise ServiceError(f"utterance {number}: " + "; ".join(wrong))
    if row["role"] not in ROLES:
        raise ServiceError(f"utterance {number}: role must be one of {', '.join(ROLES)}")
    return row["role"]


def _cut(row: Mapping, number: int, duration_s: float) -> Cut:
    times = []
    for field in ("start_s", "end_s"):
        value = row[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ServiceError(f"utterance {number}: {field} must be a finite number of seconds")
        times.append(float(value))
    start, end = times
    if not 0.0 <= start < end <= duration_s + 1e-3:
        raise ServiceError(f"utterance {number}: {start:g}-{end:g} s is not a stretch of the "
                           f"{duration_s:.2f} s recording")
    transcript = row.get("transcript", "")
    if not isinstance(transcript, str):
        raise ServiceError(f"utterance {number}: transcript must be a string")
    return Cut(start, min(end, duration_s), transcript.strip())

