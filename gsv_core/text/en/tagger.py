"""Part-of-speech tags for picking the reading of homographs ("lead" the verb vs the metal).

Upstream runs nltk's averaged-perceptron tagger, whose trained model comes from the
nltk_data downloader (the goldens used its 2015 pickle); no PyPI package ships that model.
The default here is the same kind of tagger, same features and tag set, with the model that
ships in the ``textblob-aptagger`` wheel (``trontagger-0.1.0.pickle``, Matthew Honnibal's
original model, MIT licence), run by nltk's own ``PerceptronTagger`` code. The two models
were trained on different WSJ sections, so on rare sentences they choose differently. For
exact upstream parity, point ``Lexicon.en_tagger_model`` at nltk's
``averaged_perceptron_tagger.pickle`` or at an ``averaged_perceptron_tagger_eng`` JSON folder.

The pickles hold only dicts, strings, floats and sets; they are read with an unpickler that
refuses every other class, so a tampered file cannot run code.
"""

from __future__ import annotations

import json
import pickle
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from gsv_core.text.en.resources import package_file
from gsv_core.text.errors import TextError

if TYPE_CHECKING:
    from nltk.tag.perceptron import PerceptronTagger

_DEFAULT_PACKAGE, _DEFAULT_FILE = "textblob_aptagger", "trontagger-0.1.0.pickle"
_JSON_PREFIX = "averaged_perceptron_tagger_eng"


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module in ("builtins", "__builtin__") and name == "set":
            return set
        raise pickle.UnpicklingError(f"tagger model refers to {module}.{name}; only plain data is allowed")


@lru_cache(maxsize=4)
def load_pos_tagger(model: Path | None = None) -> PerceptronTagger:
    """An nltk perceptron tagger with the given model, or the textblob-aptagger one by default.

    ``model``: a ``(weights, tagdict, classes)`` pickle, or a folder holding nltk's
    ``averaged_perceptron_tagger_eng.{weights,tagdict,classes}.json``.
    """
    path = package_file(_DEFAULT_PACKAGE, _DEFAULT_FILE) if model is None else Path(model)
    try:
        weights, tagdict, classes = _read_json_model(path) if path.is_dir() else _read_pickle_model(path)
    except (OSError, ValueError, pickle.UnpicklingError) as error:
        raise TextError(f"cannot load the POS tagger model {path}: {error}") from error
    from nltk.tag.perceptron import PerceptronTagger  # importing nltk takes seconds: only on first use

    tagger = PerceptronTagger(load=False)
    tagger.model.weights = weights
    tagger.tagdict = tagdict
    tagger.classes = tagger.model.classes = set(classes)
    return tagger


def _read_pickle_model(path: Path) -> tuple[dict, dict, set]:
    with open(path, "rb") as file:
        weights, tagdict, classes = _DataOnlyUnpickler(file, encoding="latin1").load()
    return weights, tagdict, classes


def _read_json_model(folder: Path) -> tuple[dict, dict, set]:
    def read(part: str):
        return json.loads((folder / f"{_JSON_PREFIX}.{part}.json").read_text(encoding="utf-8"))

    return read("weights"), read("tagdict"), set(read("classes"))
