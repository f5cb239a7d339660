"""Files the page offers for download (a voice's zip, the ratings CSV), kept on disk only briefly.

Gradio's file outputs take a path, which it copies into its own cache before the browser
fetches it; the cached copies are bounded by the app's ``delete_cache`` (see
:data:`DOWNLOAD_CACHE`). Our own copy is needed only until then, so each download is
written into a fresh folder under one private temporary folder, and every new download
removes all but the newest :data:`KEEP_DOWNLOADS` (those may still be being copied by
requests served at the same moment). Fifty exports leave at most that many files, not fifty.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

KEEP_DOWNLOADS = 4  # more than the events that can be finishing at once (the queue's concurrency)
# Gradio's cache (uploads, synthesized audio, downloads): every 10 minutes, what is older than an hour goes
DOWNLOAD_CACHE = (600, 3600)


class Downloads:
    """Writes each download into its own folder and keeps only the newest few of them."""

    def __init__(self, keep: int = KEEP_DOWNLOADS) -> None:
        self.keep = keep
        self._root: Path | None = None  # made on the first download
        self._written = 0  # downloads so far: the folders' names, so that their order is their age
        self._lock = threading.Lock()

    def write(self, file_name: str, data: bytes) -> str:
        """The path of a new file ``file_name`` holding ``data``; older downloads beyond ``keep`` are removed."""
        with self._lock:
            if self._root is None or not self._root.is_dir():
                self._root = Path(tempfile.mkdtemp(prefix="gsv-downloads-"))
            self._written += 1
            folder = self._root / f"{self._written:09d}"
            folder.mkdir()
            path = folder / file_name
            path.write_bytes(data)
            for old in sorted(self._root.iterdir())[:-self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        return str(path)
