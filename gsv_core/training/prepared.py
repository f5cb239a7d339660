"""A prepared dataset on disk, in the layout of the training reference's ``prepared.npz`` / ``.json``.

``prepared.npz`` holds the arrays of every utterance ``<k>`` under ``<k>_<name>`` (see
:data:`ARRAY_NAMES`); ``prepared.json`` holds per utterance its list entry, phones, word2ph
and normalized text (``utterances``), the two text files of the official experiment folder
(``files``: ``2-name2text.txt`` and ``6-name2semantic.tsv``, byte for byte as the official
preparation and webui merge write them) and the shape and dtype of every array (``keys``).
The same reader therefore loads our preparations and the reference's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from .atomic import write_atomically

ARRAY_NAMES = ("phone_ids", "word2ph", "bert", "hubert_input_16k", "ssl", "wav32k", "semantic",
               "sv_wav16k", "sv_fbank", "sv_emb")
NPZ_FILE, JSON_FILE = "prepared.npz", "prepared.json"
SEMANTIC_HEADER = "item_name\tsemantic_audio"  # the header webui writes over the merged parts


class PreparedDataError(ValueError):
    """A prepared-dataset folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class PreparedUtterance:
    """Everything the training stages read about one utterance (arrays may be absent: None).

    ``bert`` is None for languages other than Chinese (the s1 batches then hold zeros);
    the ``sv_*`` arrays exist for the v2Pro family only.
    """

    key: str
    wav_name: str
    speaker: str
    lang: str  # as written in the list (ZH, EN, ...)
    text: str
    phones: tuple[str, ...]
    word2ph: tuple[int, ...] | None
    norm_text: str
    phone_ids: np.ndarray | None = None  # (n_phones,) int64
    bert: np.ndarray | None = None  # (1024, n_phones) float32
    hubert_input_16k: np.ndarray | None = None  # (N,) float32, the 1145.14-scaled mix at 16 kHz
    ssl: np.ndarray | None = None  # (1, 768, T) float32
    wav32k: np.ndarray | None = None  # (samples,) int16, the peak-mixed 32 kHz wav
    semantic: np.ndarray | None = None  # (T // 2,) int64
    sv_wav16k: np.ndarray | None = None  # (1, N) float32
    sv_fbank: np.ndarray | None = None  # (frames, 80) float32
    sv_emb: np.ndarray | None = None  # (1, 20480) float32
    extra: dict = field(default_factory=dict)  # other json fields, kept as read

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays present, under their npz names ``<key>_<name>``."""
        out = {}
        for name in ARRAY_NAMES:
            value = self.word2ph if name == "word2ph" else getattr(self, name)
            if value is not None:
                out[f"{self.key}_{name}"] = np.asarray(value, dtype=np.int64) if name == "word2ph" else value
        return out

    def json_entry(self) -> dict:
        entry = {"key": self.key, "wav_name": self.wav_name, "speaker": self.speaker, "lang": self.lang,
                 "text": self.text, "phones": list(self.phones),
                 "word2ph": None if self.word2ph is None else list(self.word2ph), "norm_text": self.norm_text,
                 "n_phones": len(self.phones)}
        sizes = {"ssl_frames": (self.ssl, -1), "n_semantic": (self.semantic, 0), "wav32k_samples": (self.wav32k, 0)}
        entry.update({name: int(array.shape[axis]) for name, (array, axis) in sizes.items() if array is not None})
        return {**self.extra, **entry}


def name2text_file(utterances: Sequence[PreparedUtterance]) -> str:
    """``2-name2text.txt``: name, phones, word2ph (Python list text) and normalized text per line."""
    lines = [f"{u.wav_name}\t{' '.join(u.phones)}\t{list(u.word2ph) if u.word2ph is not None else None}\t{u.norm_text}"
             for u in utterances]
    return "\n".join(lines) + "\n"


def name2semantic_file(utterances: Sequence[PreparedUtterance]) -> str:
    """``6-name2semantic.tsv`` as webui merges the parts: a header, then name and codes, no final newline."""
    lines = [f"{u.wav_name}\t{' '.join(str(int(c)) for c in u.semantic)}" for u in utterances if u.semantic is not None]
    return SEMANTIC_HEADER + "\n" + "\n".join(lines)


def save_prepared(folder: str | os.PathLike, utterances: Sequence[PreparedUtterance], **json_fields) -> Path:
    """Write ``prepared.npz`` and ``prepared.json`` into ``folder`` (each atomically); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [u.key for u in utterances]
    if len(set(keys)) != len(keys):
        raise PreparedDataError(f"utterance keys must be unique: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
    arrays = {name: value for u in utterances for name, value in u.arrays().items()}
    document = {
        "utterances": [u.json_entry() for u in utterances],
        "files": {"2-name2text.txt": name2text_file(utterances), "6-name2semantic.tsv": name2semantic_file(utterances)},
        "keys": {name: [list(value.shape), str(value.dtype)] for name, value in arrays.items()},
        **json_fields,
    }
    write_atomically(folder / NPZ_FILE, lambda handle: np.savez(handle, **arrays))
    write_atomically(folder / JSON_FILE, lambda handle: handle.write(json.dumps(document, ensure_ascii=False, indent=1).encode()))
    return folder


def load_prepared(folder: str | os.PathLike, names: Sequence[str] = ARRAY_NAMES) -> list[PreparedUtterance]:
    """The utterances of a prepared folder (ours or a reference's), with the arrays ``names`` read."""
    folder = Path(folder)
    try:
        document = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
        entries = document["utterances"]
    except FileNotFoundError:
        raise PreparedDataError(f"no {JSON_FILE} in {folder}: not a prepared dataset") from None
    except (ValueError, KeyError, TypeError) as error:
        raise PreparedDataError(f"{folder / JSON_FILE} is not a prepared-dataset description ({error})") from None
    known = {f.name for f in fields(PreparedUtterance)}
    with np.load(folder / NPZ_FILE) as arrays:
        utterances = []
        for entry in entries:
            word2ph = entry.get("word2ph")
            utterance = PreparedUtterance(
                key=entry["key"], wav_name=entry["wav_name"], speaker=entry.get("speaker", ""), lang=entry.get("lang", ""),
                text=entry.get("text", ""), phones=tuple(entry["phones"]),
                word2ph=None if word2ph is None else tuple(int(n) for n in word2ph), norm_text=entry.get("norm_text", ""),
                extra={k: v for k, v in entry.items() if k not in known},
            )
            present = {name: arrays[f"{utterance.key}_{name}"] for name in names
                       if name != "word2ph" and f"{utterance.key}_{name}" in arrays.files}
            utterances.append(replace(utterance, **present))
    return utterances
