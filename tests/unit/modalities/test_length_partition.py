"""Length-grouped prediction batches: the partition covers every row once, keeps the limits, and is the cheapest
(checked against every partition of small inputs); prediction returns results in the inputs' order."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from transferlearn.modalities.text import length_partition


def _cost(spans, lengths, overhead):
    return sum(overhead + (stop - start) * lengths[stop - 1] for start, stop in spans)


def _all_partitions(n):
    for cuts in itertools.product([False, True], repeat=max(0, n - 1)):
        spans, start = [], 0
        for i, cut in enumerate(cuts, start=1):
            if cut:
                spans.append((start, i))
                start = i
        yield spans + [(start, n)]


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(1, 120), min_size=1, max_size=9).map(sorted), batch_size=st.integers(1, 5),
       max_tokens=st.one_of(st.none(), st.integers(50, 400)), overhead=st.integers(0, 64))
def test_partition_is_complete_within_limits_and_cheapest(lengths, batch_size, max_tokens, overhead):
    spans = length_partition(lengths, batch_size, max_tokens, overhead)
    assert [i for start, stop in spans for i in range(start, stop)] == list(range(len(lengths)))
    fits = lambda s: all(stop - start <= batch_size and (stop - start == 1 or not max_tokens  # noqa: E731
                                                          or (stop - start) * lengths[stop - 1] <= max_tokens)
                         for start, stop in s)
    assert fits(spans)
    best = min(_cost(p, lengths, overhead) for p in _all_partitions(len(lengths)) if fits(p))
    assert _cost(spans, lengths, overhead) == best


def test_predictions_come_back_in_input_order(trained_tiny_run):
    from transferlearn.deploy.predictor import Predictor

    predictor = Predictor(trained_tiny_run)
    items = ["good", "the food was very bad and the staff was awful really", "great place", "it", "superb lovely"] * 3
    grouped = predictor.logits(items, batch_size=4, max_tokens=24)
    one_by_one = [predictor.logits([item])[0] for item in items]
    assert all(abs(a - b).max() < 1e-5 for a, b in zip(grouped, one_by_one, strict=True))
