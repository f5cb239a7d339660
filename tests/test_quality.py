"""The quality check: CER after normalization, and the retry loop keeping the best take."""

from __future__ import annotations

import random

import pytest

from gsv_core.quality import (
    CheckedResult,
    character_error_rate,
    edit_distance,
    normalize_for_cer,
    synthesize_checked,
)


def test_normalization_folds_width_case_punctuation_and_spaces():
    assert normalize_for_cer("Hello, World!  ") == "helloworld"
    assert normalize_for_cer("ＡＢＣ１２３，你好。") == "abc123你好"  # full-width -> half-width
    assert normalize_for_cer("「今天」天气\u3000不错！") == "今天天气不错"
    assert normalize_for_cer("Straße\u200b") == "strasse"  # casefold; zero-width space removed


def test_cer_counts_edits_per_reference_character():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3
    assert character_error_rate("今天天气不错。", "今天天汽不错") == pytest.approx(1 / 6)
    assert character_error_rate("Hello world.", "hello, word") == pytest.approx(1 / 10)
    assert character_error_rate("你好", "你好你好你好") == pytest.approx(2.0)  # repetitions can exceed 1
    assert character_error_rate("。", "") == 0.0 and character_error_rate("", "a") == 1.0
    assert character_error_rate("ab", "AB", normalize=str) == 1.0


def _plain_edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_vectorized_edit_distance_matches_the_textbook_one():
    rng = random.Random(0)
    for _ in range(300):
        a, b = ("".join(rng.choice("ab你好c") for _ in range(rng.randint(0, 12))) for _ in range(2))
        assert edit_distance(a, b) == _plain_edit_distance(a, b), (a, b)


class FakeSynthesis:
    """Records the seeds asked for; a take is the seed itself."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def __call__(self, seed: int) -> int:
        self.seeds.append(seed)
        return seed


def test_a_failed_first_take_is_retried_with_the_next_seed():
    synthesize, retries = FakeSynthesis(), []
    transcripts = {10: "今天天气", 11: "今天天气不错"}
    checked = synthesize_checked(synthesize, transcripts.__getitem__, "今天天气不错。", first_seed=10,
                                 max_tries=4, threshold=0.1, on_retry=lambda n, cer: retries.append((n, cer)))
    assert isinstance(checked, CheckedResult)
    assert (checked.result, checked.seed, checked.tries, checked.cer) == (11, 11, 2, 0.0)
    assert synthesize.seeds == [10, 11] and retries == [(1, pytest.approx(2 / 6))]
    assert checked.transcript == "今天天气不错"


def test_when_every_take_fails_the_best_of_n_is_kept():
    synthesize = FakeSynthesis()
    transcripts = {5: "a", 6: "abcd", 7: "ab", 8: "abcd"}  # best: seed 6 (first of the two equal ones)
    checked = synthesize_checked(synthesize, transcripts.__getitem__, "abcdef", first_seed=5, max_tries=4,
                                 threshold=0.0)
    assert synthesize.seeds == [5, 6, 7, 8]
    assert (checked.tries, checked.seed, checked.result) == (4, 6, 6)
    assert checked.cer == pytest.approx(2 / 6)


def test_a_good_first_take_is_not_retried_and_bad_arguments_fail():
    synthesize = FakeSynthesis()
    checked = synthesize_checked(synthesize, lambda take: "Hello world", "Hello, world!", first_seed=0)
    assert (checked.tries, checked.cer, synthesize.seeds) == (1, 0.0, [0])
    with pytest.raises(ValueError, match="max_tries"):
        synthesize_checked(synthesize, str, "x", first_seed=0, max_tries=0)
