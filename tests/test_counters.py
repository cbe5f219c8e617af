"""One set of counters, summed by one generic ``add``: a field added to ``Counters`` is summed
everywhere (clients, listings, outcomes) without another line."""

from __future__ import annotations

import dataclasses
from collections import Counter

from exporter.model.counters import Counters
from exporter.model.runs import DatasetOutcome


def _every_field_set(offset: int) -> Counters:
    counts = Counters()
    for number, f in enumerate(dataclasses.fields(Counters), 1 + offset):
        value = getattr(counts, f.name)
        if isinstance(value, Counter):
            setattr(counts, f.name, Counter({f.name: number}))
        elif isinstance(value, float):
            setattr(counts, f.name, number + 0.5)
        else:
            assert isinstance(value, int), f"{f.name}: add() knows no {type(value).__name__}"
            setattr(counts, f.name, number)
    return counts


def test_add_sums_every_field() -> None:
    """Every declared field, whatever its type, is summed: none is left out of ``add``."""
    one, two = _every_field_set(0), _every_field_set(100)
    total = Counters()
    total.add(one)
    total.add(two)
    for f in dataclasses.fields(Counters):
        mine, a, b = getattr(total, f.name), getattr(one, f.name), getattr(two, f.name)
        if isinstance(mine, Counter):
            assert mine == a + b, f.name
        else:
            assert mine == a + b and mine != 0, f.name
    assert total.throttles == one.throttles + two.throttles > 0


def test_add_into_a_carrier_sums_only_the_counters() -> None:
    """An outcome adds a probe's counters; its own fields (records, windows) are its own."""
    outcome = DatasetOutcome("acme", "meeting_usage", records=3, windows_committed=1)
    outcome.add(_every_field_set(0))
    outcome.add(DatasetOutcome("acme", "meeting_usage", records=5, windows_committed=2))
    assert (outcome.records, outcome.windows_committed) == (3, 1)
    assert outcome.requests == _every_field_set(0).requests


def test_throttles_is_the_total_of_every_cause() -> None:
    counts = Counters(throttles_by_cause=Counter({"000045": 2, "http429": 1}))
    assert counts.throttles == 3 and Counters().throttles == 0


def test_reset_zeroes_without_touching_a_copys_original() -> None:
    original = _every_field_set(0)
    copy = dataclasses.replace(original)
    copy.reset()
    assert copy == Counters() and original == _every_field_set(0)
