"""Long recordings cut into reference utterances: cuts at the pauses, bad pieces dropped, a main picked.

The speech is made with espeak-ng and joined with known pauses by sox (``espeak_speech``), so
the true cut points are known; the tests skip, saying so, where those tools are absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from espeak_speech import RATE, espeak_recording

from gsv_core.audio import check_reference_samples
from gsv_core.speakers.recordings import (
    MAX_AUXILIARIES,
    MAX_RECORDING_SECONDS,
    Problem,
    RecordingError,
    plan_recording,
)

PAUSE_S = 1.0
SENTENCES = {
    "fox": "The quick brown fox jumps over the lazy dog near the river bank today.",
    "shells": "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "short": "Yes.",
    "clipped": "Peter Piper picked a peck of pickled peppers from the garden.",
    "rain": "The rain in Spain stays mainly in the plain, or so they say.",
    "quiet": "How much wood would a woodchuck chuck if it could chuck wood?",
}
# sox effects per piece: the clipped one is driven 20 dB over full scale, the quiet one 26 dB down.
EFFECTS = {"clipped": ["gain", "20"], "quiet": ["vol", "0.05"]}


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[np.ndarray, dict[str, tuple[float, float]]]:
    """The joined recording (n,) at 22.05 kHz and each piece's [start, end) in seconds."""
    joined, bounds = espeak_recording(tmp_path_factory.mktemp("recording"), SENTENCES, PAUSE_S, EFFECTS)
    samples, rate = soundfile.read(str(joined), dtype="float32")
    assert rate == RATE
    return samples, bounds


def _find(plan, start_s: float, end_s: float):
    """The utterance (kept or dropped) lying inside [start_s, end_s]."""
    everything = ([plan.main] if plan.main else []) + list(plan.auxiliaries) + list(plan.spare) + list(plan.dropped)
    found = [u for u in everything if start_s - 0.06 <= u.start_s and u.end_s <= end_s + 0.06]
    assert len(found) == 1, (start_s, end_s, everything)
    return found[0]


def test_cuts_fall_in_the_pauses_and_bad_pieces_are_dropped_for_their_reason(recording):
    samples, bounds = recording
    plan = plan_recording(samples, RATE)
    for name, (start, end) in bounds.items():
        utterance = _find(plan, start - PAUSE_S / 2, end + PAUSE_S / 2)
        # espeak-ng leaves about 0.4 s of silence at the end of each file: the cut may come earlier
        assert start - 0.1 <= utterance.start_s <= start + 0.15, (name, utterance)
        assert end - 0.6 <= utterance.end_s <= end + 0.1, (name, utterance)
    assert _find(plan, *bounds["short"]).problems[0] is Problem.TOO_SHORT
    assert Problem.CLIPPED in _find(plan, *bounds["clipped"]).problems
    assert Problem.TOO_QUIET in _find(plan, *bounds["quiet"]).problems
    assert {u.transcript for u in plan.dropped} == {""}
    assert len(plan.dropped) == 3 and all(u.score == 0.0 for u in plan.dropped)


def test_a_main_reference_of_3_to_10_s_and_ranked_auxiliaries(recording):
    samples, bounds = recording
    plan = plan_recording(samples, RATE)
    assert plan.main is not None and 3.0 <= plan.main.duration_s <= 10.0
    assert plan.main.usable and len(plan.auxiliaries) == 2 and not plan.spare
    scores = [plan.main.score] + [u.score for u in plan.auxiliaries]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    main_audio = plan.main.samples(samples, RATE)
    assert main_audio.shape == (round(plan.main.end_s * RATE) - round(plan.main.start_s * RATE),)
    for utterance in (plan.main, *plan.auxiliaries):  # every kept one can become a reference as it is
        check_reference_samples(utterance.samples(samples, RATE), RATE)
    assert len(plan_recording(samples, RATE, max_auxiliaries=1).auxiliaries) == 1


def test_timestamps_set_the_cuts_and_the_main_is_a_complete_sentence(recording):
    samples, bounds = recording
    fox, shells, rain = bounds["fox"], bounds["shells"], bounds["rain"]
    segments = [
        (fox[0], fox[1] - 0.4, SENTENCES["fox"]),
        (shells[0], shells[0] + 2.3, "She sells sea shells by the sea shore,"),  # merges: no sentence end, short gap
        (shells[0] + 2.4, shells[1] - 0.4, "and the shells she sells are surely sea shells."),
        (rain[0], rain[1] - 0.4, "The rain in Spain stays mainly in the plain, or so they"),  # cut off: incomplete
    ]
    plan = plan_recording(samples, RATE, segments)
    texts = {u.transcript: u for u in [plan.main, *plan.auxiliaries]}
    assert SENTENCES["shells"] in texts and SENTENCES["fox"] in texts
    assert texts[SENTENCES["shells"]].start_s == pytest.approx(shells[0], abs=1e-3)
    assert Problem.INCOMPLETE in texts[segments[-1][2]].problems
    assert plan.main.transcript in (SENTENCES["fox"], SENTENCES["shells"]) and not plan.dropped


def test_signal_problems_on_synthetic_audio():
    rate = 16000
    t = np.arange(int(12.5 * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)) / 1.3).astype(np.float32)
    recording = np.concatenate([tone, np.zeros(2 * rate, np.float32), tone[: 5 * rate]])
    plan = plan_recording(recording, rate)
    assert [u.problems[:1] for u in plan.dropped] == [(Problem.TOO_LONG,)]  # 12.5 s without a pause
    assert plan.main is not None and plan.main.start_s > 12.5
    silent = plan_recording(recording, rate, [(13.0, 14.4, "silence."), (14.6, 19.0, "a tone.")])
    assert silent.dropped[0].problems[:2] == (Problem.TOO_SHORT, Problem.SILENT)


def test_unplannable_recordings_are_refused_with_a_clear_message():
    rate = 8000
    with pytest.raises(RecordingError, match=f"at most {MAX_RECORDING_SECONDS:.0f} s"):
        plan_recording(np.full(int((MAX_RECORDING_SECONDS + 1) * rate), 0.1, np.float32), rate)
    with pytest.raises(RecordingError, match="silent"):
        plan_recording(np.zeros(rate * 5, np.float32), rate)
    with pytest.raises(RecordingError, match="mono"):
        plan_recording(np.zeros((2, rate), np.float32), rate)
    with pytest.raises(RecordingError, match="NaN"):
        plan_recording(np.array([0.1, np.nan], np.float32), rate)
    assert MAX_AUXILIARIES >= 1


def test_load_recording_reads_long_uploads_and_refuses_overlong_ones(tmp_path):
    from gsv_core.audio import AudioError, wav_bytes
    from gsv_core.speakers.recordings import load_recording

    rate = 8000
    stereo = np.random.default_rng(0).normal(0, 0.1, (40 * rate, 2)).astype(np.float32)
    soundfile.write(tmp_path / "long.wav", stereo, rate)
    samples, got_rate = load_recording(tmp_path / "long.wav")  # 40 s: too long for a reference, fine here
    assert got_rate == rate and samples.shape == (40 * rate,)
    with pytest.raises(RecordingError, match="at most"):
        load_recording(wav_bytes(np.full(int((MAX_RECORDING_SECONDS + 1) * rate), 0.1, np.float32), rate))
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_recording(b"not audio")
    with pytest.raises(RecordingError, match="the recording is 40 s long; recordings of at most 30 s are accepted"):
        load_recording(tmp_path / "long.wav", max_seconds=30)  # a server's own bound, by the header
    headerless = tmp_path / "long.ogg"  # refused by its header where it tells the length, else once decoded
    soundfile.write(headerless, stereo, rate, format="OGG")
    with pytest.raises(RecordingError, match="recordings of at most 30 s are accepted"):
        load_recording(headerless, max_seconds=30)


def test_fixed_cuts_are_assessed_as_they_are(recording):
    from gsv_core.speakers.recordings import plan_cuts

    samples, bounds = recording
    cuts = [(bounds[name][0], bounds[name][1], SENTENCES[name]) for name in ("fox", "short", "rain")]
    cuts[2] = (*cuts[2][:2], "The rain in Spain stays mainly in the plain, or so they")  # no sentence end
    plan = plan_cuts(samples, RATE, cuts)
    assert (plan.main.start_s, plan.main.transcript) == (round(bounds["fox"][0], 3), SENTENCES["fox"])
    assert plan.main.end_s == round(bounds["fox"][1], 3)  # no padding, merging or splitting
    assert [u.transcript for u in plan.auxiliaries] == [cuts[2][2]] and Problem.INCOMPLETE in plan.auxiliaries[0].problems
    assert [u.problems[0] for u in plan.dropped] == [Problem.TOO_SHORT]
    with pytest.raises(RecordingError, match="lies outside"):
        plan_cuts(samples, RATE, [(5.0, 500.0, "")])
