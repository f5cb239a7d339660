"""A g2pW model directory: its character lists, labels, tokenizer and ONNX network.

g2pW (Chen et al., 2022) is a BERT that reads a window of a sentence and gives, for one
polyphonic character in it, a probability over the readings (bopomofo with a tone digit) that
character can have. The official GPT-SoVITS frontend ships it as a folder (``G2PWModel``):

- ``g2pW.onnx`` (or ``g2pw.onnx``): the network, inputs ``input_ids``, ``token_type_ids``,
  ``attention_mask`` (B, T) int64, ``phoneme_mask`` (N, L) float32, ``char_ids`` and
  ``position_ids`` (N,) int64; output ``probs`` (N, L). B is N, or 1 for N queries of one window.
- ``POLYPHONIC_CHARS.txt`` / ``MONOPHONIC_CHARS.txt``: ``char<TAB>bopomofo+tone`` rows. The
  labels L are the sorted distinct readings of the polyphonic rows, the character ids index
  the sorted polyphonic characters: both depend on the release, so they are read, never assumed.
- ``bopomofo_to_pinyin_wo_tune_dict.json``: bopomofo without tone -> pinyin without tone.
- ``config.py``: read for ``use_mask`` and ``use_char_phoneme`` only, as literals (never executed;
  upstream executes it); without one, the released values (True, False).

The tokenizer is the BERT vocabulary's ``tokenizer.json`` (a ``tokenizer/`` folder inside the
model directory, or the chinese-roberta-wwm-ext-large folder, whose vocabulary is the same).
``char_bopomofo_dict.json`` is not read: upstream loads it, but it changes no reading.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import TextError

ONNX_NAMES = ("g2pW.onnx", "g2pw.onnx")
POLYPHONIC_FILE = "POLYPHONIC_CHARS.txt"
MONOPHONIC_FILE = "MONOPHONIC_CHARS.txt"
PINYIN_FILE = "bopomofo_to_pinyin_wo_tune_dict.json"
CONFIG_FILE = "config.py"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 512  # BERT positions, [CLS] and [SEP] included
# Characters in the polyphonic list that upstream never asks the model about, and
# monophonic entries it ignores (code constants of the official converter, not model data).
NOT_ASKED = frozenset("一不和咋嗲剖差攢倒難奔勁拗肖瘙誒泊听噢")
NOT_MONOPHONIC = frozenset("似攢")
_WORD = re.compile(r" +|[a-zA-Z0-9]+|.", re.DOTALL)  # a space run, an ASCII letter/digit run, one char


class G2PWModelError(TextError):
    """A g2pW model directory that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class EncodedWindow:
    """One query's network input: token ids of its window and the token index of its character."""

    input_ids: tuple[int, ...]  # [CLS] ... [SEP], unpadded
    position: int  # index of the query character's token in input_ids
    char: str  # the query character (after lowercasing, as the ids were made)


def _reason(error: Exception) -> str:
    """An error's reason without the path it names."""
    return getattr(error, "strerror", None) or type(error).__name__


def _read_rows(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8").strip().split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise G2PWModelError(f"cannot read the g2pW list {path.name}: {_reason(error)}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 2 or len(fields[0]) != 1 or not fields[1]:
            raise G2PWModelError(f"{path.name}:{number}: expected 'character<TAB>bopomofo', got {line[:40]!r}")
        rows.append((fields[0], fields[1]))
    return rows


def _read_config(path: Path) -> dict[str, object]:
    """The literal top-level assignments of ``config.py`` (anything else in it is ignored; no file: defaults)."""
    if not path.exists():
        return {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=path.name)
    except (OSError, UnicodeDecodeError, SyntaxError) as error:
        raise G2PWModelError(f"cannot read the g2pW {path.name}: {_reason(error)}") from None
    config: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                config[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return config


def _onnx_file(model_dir: Path) -> Path:
    for name in ONNX_NAMES:
        if (model_dir / name).is_file():
            return model_dir / name
    raise G2PWModelError(f"the g2pW model folder has no {' or '.join(ONNX_NAMES)}")


def tokenizer_file(model_dir: Path, tokenizer_dir: Path | None = None) -> Path:
    """``tokenizer.json`` of ``tokenizer_dir``, else of ``model_dir/tokenizer``, else of ``model_dir``."""
    candidates = [tokenizer_dir] if tokenizer_dir is not None else [model_dir / "tokenizer", model_dir]
    for folder in candidates:
        if (Path(folder) / TOKENIZER_FILE).is_file():
            return Path(folder) / TOKENIZER_FILE
    raise G2PWModelError(
        f"no {TOKENIZER_FILE} for the g2pW model: give the BERT folder (chinese-roberta-wwm-ext-large) as its tokenizer"
    )


def int8_network(onnx_file: Path, folder: Path) -> Path:
    """The network with its MatMul weights in int8 (ONNX Runtime's dynamic quantization; about 3.5x
    faster on a CPU with int8 dot products, and no longer bit-exact), made once into ``folder``
    and named by the fingerprint of ``onnx_file``."""
    from gsv_core.weights_key import weights_key

    target = Path(folder) / f"{weights_key('g2pW', [onnx_file])}-int8.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    # The quantizer logs through the root logger, which would install a handler on it: give it one
    # that drops everything for the duration.
    silence = logging.NullHandler()
    logging.getLogger().addHandler(silence)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(onnx_file, partial, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        partial.replace(target)
    except Exception as error:  # the quantizer's own errors, or its onnx package missing
        raise G2PWModelError(f"cannot make the int8 g2pW network: {type(error).__name__}: {error}") from error
    finally:
        logging.getLogger().removeHandler(silence)
        partial.unlink(missing_ok=True)
    return target


def _session(path: Path, threads: int | None, providers: Sequence[str] | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    # Idle threads sleep instead of spinning: on a small shared CPU spinning takes cores from the
    # synthesis models running beside the frontend.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options,
                                            providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as error:  # onnxruntime raises its own exception types
        raise G2PWModelError(f"cannot load the g2pW network {path.name}: {type(error).__name__}") from error


class G2PWModel:
    """The loaded model directory; :meth:`probabilities` is thread-safe."""

    def __init__(self, model_dir: Path, tokenizer_dir: Path | None = None, threads: int | None = None,
                 providers: Sequence[str] | None = None, int8_dir: Path | None = None) -> None:
        """``int8_dir``: run the int8 network (:func:`int8_network`), kept in that folder.
        Raises G2PWModelError naming the file that is missing or malformed."""
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise G2PWModelError("the g2pW model folder does not exist")
        config = _read_config(model_dir / CONFIG_FILE)
        self.use_mask = bool(config.get("use_mask", True))
        self.use_char_phoneme = bool(config.get("use_char_phoneme", False))
        polyphonic = _read_rows(model_dir / POLYPHONIC_FILE)
        names = [f"{char} {reading}" if self.use_char_phoneme else reading for char, reading in polyphonic]
        self.labels: tuple[str, ...] = tuple(sorted(set(names)))
        index = {label: i for i, label in enumerate(self.labels)}
        char_labels: dict[str, list[int]] = {}
        for (char, _), name in zip(polyphonic, names):
            char_labels.setdefault(char, []).append(index[name])
        self.chars: tuple[str, ...] = tuple(sorted(char_labels))
        self.char_ids: Mapping[str, int] = MappingProxyType({char: i for i, char in enumerate(self.chars)})
        self._masks = np.zeros((len(self.chars), len(self.labels)), dtype=np.float32)
        for char, labels in char_labels.items():
            self._masks[self.char_ids[char], labels] = 1.0
        self.asked: frozenset[str] = frozenset(self.chars) - NOT_ASKED
        self.monophonic: Mapping[str, str] = MappingProxyType(
            {char: reading for char, reading in _read_rows(model_dir / MONOPHONIC_FILE) if char not in NOT_MONOPHONIC}
        )
        try:
            self._pinyin = dict(json.loads((model_dir / PINYIN_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise G2PWModelError(f"cannot read the g2pW {PINYIN_FILE}: {_reason(error)}") from None
        self.onnx_file = _onnx_file(model_dir)
        self.network_file = int8_network(self.onnx_file, int8_dir) if int8_dir is not None else self.onnx_file
        self.tokenizer_file = tokenizer_file(model_dir, tokenizer_dir)
        self._tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
        self._unknown_id, self._cls_id, self._sep_id = (self._tokenizer.token_to_id(t) for t in ("[UNK]", "[CLS]", "[SEP]"))
        self._word_pieces = lru_cache(maxsize=1 << 14)(self._pieces)  # words repeat: one tokenizer call each
        self._session = _session(self.network_file, threads, providers)
        read = (CONFIG_FILE, POLYPHONIC_FILE, MONOPHONIC_FILE, PINYIN_FILE)
        self.files: tuple[Path, ...] = (self.network_file, *(model_dir / name for name in read if (model_dir / name).exists()),
                                        self.tokenizer_file)

    def to_pinyin(self, bopomofo: str) -> str | None:
        """A label ("ㄏㄤ2", or "行 ㄏㄤ2" with per-character labels) -> pinyin with tone ("hang2"); None if unknown."""
        reading = bopomofo.split(" ")[-1]
        if not reading or reading[-1] not in "12345":
            return None
        syllable = self._pinyin.get(reading[:-1])
        return syllable + reading[-1] if syllable else None

    def _pieces(self, word: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The token ids of a word and how many characters each token covers; a word the
        vocabulary cannot spell is one [UNK] token."""
        encoding = self._tokenizer.encode(word, add_special_tokens=False)
        if not encoding.tokens or encoding.tokens == ["[UNK]"]:
            return (self._unknown_id,), (len(word),)
        return tuple(encoding.ids), tuple(len(piece.removeprefix("##")) for piece in encoding.tokens)

    def _tokenize(self, text: str) -> tuple[list[int], list[int | None]]:
        """Token ids, and the index of each character's token (None for spaces).

        Each character is a word, except runs of ASCII letters and digits.
        """
        ids: list[int] = []
        char_token: list[int | None] = [None] * len(text)
        for match in _WORD.finditer(text):
            word, start = match.group(), match.start()
            if word[0] == " ":
                continue
            for piece, length in zip(*self._word_pieces(word)):
                for position in range(start, min(start + length, len(text))):
                    char_token[position] = len(ids)
                ids.append(piece)
                start += length
        return ids, char_token

    def encode(self, window: str, query: int) -> EncodedWindow:
        """The network input for the character at ``query`` of ``window`` (lowercased first).

        Windows over 510 tokens are cut to 510 tokens centred on the query, shifted to fit.
        """
        text = window.lower()
        ids, char_token = self._tokenize(text)
        token = char_token[query]
        if token is None:
            raise TextError(f"the g2pW query character at {query} of {window!r} has no token")
        keep = MAX_TOKENS - 2
        if len(ids) > keep:
            first = min(max(token - keep // 2, 0), len(ids) - keep)
            ids, token = ids[first:first + keep], token - first
        return EncodedWindow((self._cls_id, *ids, self._sep_id), token + 1, text[query])

    def probabilities(self, windows: Sequence[EncodedWindow], width: int, shared: bool) -> np.ndarray:
        """Probabilities (N, L) over the labels for N queries.

        ``width``: the token length every row is right-padded to (upstream pads to the
        longest window of the whole call). ``shared``: all queries read one window, which
        then goes in once (B = 1) instead of once per query.
        """
        rows = windows[:1] if shared else windows
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, :len(row.input_ids)] = row.input_ids
            attention[i, :len(row.input_ids)] = 1
        char_ids = np.array([self.char_ids[w.char] for w in windows], dtype=np.int64)
        masks = self._masks[char_ids] if self.use_mask else np.ones((len(windows), len(self.labels)), np.float32)
        feeds = {
            "input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids), "attention_mask": attention,
            "phoneme_mask": masks, "char_ids": char_ids,
            "position_ids": np.array([w.position for w in windows], dtype=np.int64),
        }
        return self._session.run(None, feeds)[0]
