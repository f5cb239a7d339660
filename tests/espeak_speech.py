"""Long test recordings made of espeak-ng sentences joined by sox with known pauses.

The true cut points are known, so tests can check where a recording was cut; callers skip,
saying so, where espeak-ng or sox is absent (:func:`require_speech_tools`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import soundfile

RATE = 22050
# espeak-ng leaves about this much silence at the end of each sentence it writes.
TRAILING_SILENCE_S = 0.4


def require_speech_tools() -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to make the test speech (apt-get install espeak-ng sox)")


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def espeak_recording(folder: Path, sentences: Mapping[str, str], pause_s: float = 1.0,
                     effects: Mapping[str, Sequence[str]] | None = None, voice: str = "en-us",
                     rate: int = RATE) -> tuple[Path, dict[str, tuple[float, float]]]:
    """A WAV of the ``sentences`` (by name) in order, ``pause_s`` of silence before, between and
    after them, each piece through its sox ``effects``. Returns the file and each sentence's
    [start, end) in seconds (the end includes espeak-ng's own trailing silence)."""
    require_speech_tools()
    folder.mkdir(parents=True, exist_ok=True)
    silence = folder / "pause.wav"
    _run(["sox", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(silence), "trim", "0", str(pause_s)])
    files, bounds, position = [silence], {}, pause_s
    for name, text in sentences.items():
        raw, piece = folder / f"{name}.raw.wav", folder / f"{name}.wav"
        _run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text])
        _run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(piece), *(effects or {}).get(name, [])])
        length = soundfile.info(str(piece)).frames / rate
        bounds[name] = (position, position + length)
        files += [piece, silence]
        position += length + pause_s
    joined = folder / "recording.wav"
    _run(["sox", *map(str, files), str(joined)])
    return joined, bounds


def whisper_chunks(sentences: Mapping[str, str], bounds: Mapping[str, tuple[float, float]]) -> list:
    """What a perfect Whisper would answer: each sentence with its time stamps (trailing silence left out)."""
    return [(" " + text, (round(bounds[name][0], 2), round(bounds[name][1] - TRAILING_SILENCE_S, 2)))
            for name, text in sentences.items()]
