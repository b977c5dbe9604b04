import numpy as np
import pytest

from gpt_mini.data import get_batch, pad_batch, unigram_loss


def test_batches_are_shifted_windows():
    data = np.arange(100)
    idx, targets, mask = get_batch(data, 8, 4, np.random.default_rng(0))
    assert idx.shape == targets.shape == (4, 8) and mask is None
    np.testing.assert_array_equal(targets, idx + 1)


def test_pad_batch_shifts_the_weights_with_the_targets_and_never_scores_padding():
    examples = [([5, 6, 7, 8], [0, 0, 1, 1]), ([9, 10], [0, 1])]
    idx, targets, mask = pad_batch(examples, pad_id=0)
    np.testing.assert_array_equal(idx, [[5, 6, 7], [9, 0, 0]])
    np.testing.assert_array_equal(targets, [[6, 7, 8], [10, 0, 0]])
    # token 7 is predicted at position 1 (from 5, 6): its weight moves with it; padding never counts
    np.testing.assert_array_equal(mask, [[False, True, True], [True, False, False]])
    with pytest.raises(ValueError, match="example 0 has 4 tokens"):
        pad_batch(examples, pad_id=0, length=2)


def test_unigram_loss_is_the_cross_entropy_of_add_one_frequencies():
    train, val = np.array([0, 0, 0, 1]), np.array([0, 1])
    p = np.array([4, 2, 1]) / 7                      # counts + 1 over a vocabulary of 3
    assert unigram_loss(train, val, 3) == pytest.approx(-(np.log(p[0]) + np.log(p[1])) / 2)
