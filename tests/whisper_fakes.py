"""A stand-in for the transformers ASR pipeline of Whisper: its real call and output format, scripted text."""

from __future__ import annotations


class FakeWhisperPipeline:
    """The transformers ASR pipeline's call and output format for Whisper with timestamps.

    ``pipeline({"raw", "sampling_rate"}, return_timestamps=True, return_language=True,
    generate_kwargs={...})`` -> ``{"text", "chunks": [{"text", "timestamp": (start, end | None),
    "language"}]}``; the language is the forced one, else what it "detects".
    """

    def __init__(self, chunks, detected="english"):
        self.chunks, self.detected, self.calls = chunks, detected, []

    def __call__(self, inputs, return_timestamps=None, return_language=None, generate_kwargs=None, **kwargs):
        self.calls.append({"samples": len(inputs["raw"]), "rate": inputs["sampling_rate"],
                           "return_timestamps": return_timestamps, "return_language": return_language,
                           "generate_kwargs": generate_kwargs, **kwargs})
        language = (generate_kwargs or {}).get("language", self.detected)
        chunks = [{"text": text, "timestamp": stamp, **({"language": language} if return_language else {})}
                  for text, stamp in self.chunks]
        output = {"text": "".join(text for text, _ in self.chunks)}
        return {**output, "chunks": chunks} if return_timestamps or return_language else output
