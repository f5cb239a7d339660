#!/usr/bin/env bash
# Regenerate the shipped example speakers: synthetic voices made here with espeak-ng and sox
# (Debian packages), stored through the speaker library without embeddings (those are computed
# when real weights load). Usage, from anywhere: speakers/make_examples.sh [path/to/python]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
python="${1:-$repo/.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
espeak_version="$(espeak-ng --version | awk '{print $4}')"

# make_example ID VOICE LANGUAGE NAME TRANSCRIPT
make_example() {
  local id="$1" voice="$2" language="$3" name="$4" text="$5"
  espeak-ng -v "$voice" -w "$work/raw.wav" "$text"
  sox -D "$work/raw.wav" -r 32000 -c 1 -b 16 "$work/$id.wav"
  local source="synthetic voice: espeak-ng $espeak_version (a GPL-3.0-or-later program; its audio output is \
shipped as example data), voice $voice, made by: espeak-ng -v $voice -w raw.wav TRANSCRIPT; \
sox -D raw.wav -r 32000 -c 1 -b 16 reference.wav (speakers/make_examples.sh)"
  PYTHONPATH="$repo" "$python" - "$here" "$id" "$work/$id.wav" "$text" "$language" "$name" "$source" <<'PY'
import shutil
import sys
from pathlib import Path

from gsv_core.speakers import SpeakerLibrary

root, speaker_id, audio, transcript, language, name, source = sys.argv[1:]
shutil.rmtree(Path(root) / speaker_id, ignore_errors=True)  # our own example: replaced as a whole
library = SpeakerLibrary(root)
info = library.add(Path(audio), transcript, language, name, prepare=None, weights_key=None,
                   speaker_id=speaker_id, synthetic=True, source=source)
print(f"{info.id}: {info.duration_s:.2f} s, {info.sample_rate} Hz")
PY
}

make_example espeak-en-us en-us en "eSpeak English (synthetic)" \
  "Hello, and welcome to the voice studio. This short clip is a reference for cloning a voice."
make_example espeak-cmn cmn all_zh "eSpeak 普通话 (synthetic)" \
  "欢迎来到语音合成演示。这是一段参考音频。"
