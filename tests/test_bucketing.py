import numpy as np
import pytest

from gsv_core.audio import join_fragments, to_int16
from gsv_core.engine.bucketing import bucket_batches


def test_buckets_cover_every_segment_once():
    lengths = [7, 30, 3, 18, 18, 40, 2, 9]
    for size in (1, 2, 3, 5, 8):
        batches = bucket_batches(lengths, size)
        flat = sorted(i for batch in batches for i in batch)
        assert flat == list(range(len(lengths)))
        assert all(1 <= len(batch) <= size for batch in batches)


def test_bucket_drops_an_outlier_into_its_own_batch():
    # Sorted lengths 10, 11, 12, 50: the window of four has 12 / 20.75 < 0.75 at its middle,
    # the window of three has 11 / 11 = 1, so the long segment is decoded on its own.
    assert bucket_batches([10, 50, 12, 11], batch_size=4) == [[0, 3, 2], [1]]


def test_without_bucketing_segments_stay_in_order():
    assert bucket_batches([5, 1, 9, 2, 7], batch_size=2, split_bucket=False) == [[0, 1], [2, 3], [4]]


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        bucket_batches([1, 2], batch_size=0)


def test_fragments_are_peak_limited_and_separated_by_silence():
    loud = np.array([0.5, -2.0], dtype=np.float32)
    quiet = np.array([0.25], dtype=np.float32)
    audio = join_fragments([loud, quiet], sample_rate=10, interval_s=0.3)
    np.testing.assert_array_equal(audio, [0.25, -1.0, 0, 0, 0, 0.25, 0, 0, 0])
    assert audio.dtype == np.float32


def test_int16_conversion_truncates_like_the_official_writer():
    np.testing.assert_array_equal(to_int16(np.array([0.5, -0.5, 0.99999])), [16384, -16384, 32767])
