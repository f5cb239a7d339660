"""One JSON line per synthesis, successful or not, to stdout and a file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path


class SynthesisLog:
    def __init__(self, path: Path | None, log_text: bool = False) -> None:
        self.path = path
        self.log_text = log_text  # the visitor's text itself is logged only when configured
        self._lock = threading.Lock()

    def record(self, text: str, speaker_id: str, language: str) -> dict:
        """The fields known before synthesis starts."""
        record = {"speaker_id": speaker_id, "language": language, "text_chars": len(text or "")}
        if self.log_text:
            record["text"] = text
        return record

    def write(self, record: dict, started: float, **fields) -> None:
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record,
                           "wall_s": round(time.perf_counter() - started, 3), **fields}, ensure_ascii=False)
        # a lone surrogate in a refused text cannot be written as UTF-8: it stays a JSON escape ("\ud800")
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
        print(line, flush=True)
        if self.path is not None:
            with self._lock, open(self.path, "a", encoding="utf-8") as log:
                log.write(line + "\n")
