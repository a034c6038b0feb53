"""Hand-computed checks of the latency and rate statistics."""

import json
import math

import pytest

from listener_head_ros.eval.latency import dropped_from_sequence, latency_stats, rate_stats


def test_latency_percentiles():
    # Latencies 0.1, 0.2, 0.3, 0.4 s. Linear interpolation on ranks 0..3:
    # p50 at rank 1.5 -> 0.25; p90 at 2.7 -> 0.3 + 0.7 * 0.1 = 0.37; p99 at 2.97 -> 0.397.
    s = latency_stats([0.0, 1.0, 2.0, 3.0], [0.1, 1.2, 2.3, 3.4])
    assert s.count == 4
    assert s.mean_s == pytest.approx(0.25)
    assert s.min_s == pytest.approx(0.1)
    assert s.p50_s == pytest.approx(0.25)
    assert s.p90_s == pytest.approx(0.37)
    assert s.p99_s == pytest.approx(0.397)
    assert s.max_s == pytest.approx(0.4)


def test_latency_without_messages_is_nan():
    s = latency_stats([], [])
    assert s.count == 0 and math.isnan(s.p50_s)
    assert s.to_dict()['p99_s'] is None
    json.dumps(s.to_dict(), allow_nan=False)


def test_latency_length_mismatch_is_refused():
    with pytest.raises(ValueError):
        latency_stats([0.0, 1.0], [0.5])


def test_rate_gaps_and_drops_at_an_expected_rate():
    # 10 Hz stream with stamps 0, .1, .2, .5, .6: intervals .1, .1, .3, .1.
    # Rate = 4 intervals / 0.6 s = 6.667 Hz. One gap (.3 > 2 * .1) that hides
    # round(.3 / .1) - 1 = 2 dropped messages.
    s = rate_stats([0.0, 0.1, 0.2, 0.5, 0.6], expected_rate_hz=10.0)
    assert s.count == 5
    assert s.duration_s == pytest.approx(0.6)
    assert s.rate_hz == pytest.approx(4 / 0.6)
    assert s.period_s == pytest.approx(0.1)
    assert s.interval_p50_s == pytest.approx(0.1)
    assert s.interval_max_s == pytest.approx(0.3)
    assert (s.gaps, s.dropped) == (1, 2)


def test_rate_uses_the_median_interval_without_an_expected_rate():
    # Intervals 1, 1, 1, 5 (unsorted input is sorted first): median 1, one gap of
    # 5 periods -> 4 dropped; a gap threshold of 6 periods finds none.
    stamps = [3.0, 0.0, 1.0, 2.0, 8.0]
    s = rate_stats(stamps)
    assert s.period_s == pytest.approx(1.0)
    assert (s.gaps, s.dropped) == (1, 4)
    assert rate_stats(stamps, gap_periods=6.0).gaps == 0


def test_rate_of_one_message_is_nan():
    s = rate_stats([1.0], expected_rate_hz=25.0)
    assert s.count == 1 and math.isnan(s.rate_hz) and s.dropped == 0
    json.dumps(s.to_dict(), allow_nan=False)


def test_rate_arguments_are_checked():
    with pytest.raises(ValueError):
        rate_stats([0.0, 1.0], expected_rate_hz=0.0)
    with pytest.raises(ValueError):
        rate_stats([0.0, 1.0], gap_periods=0.5)


def test_dropped_from_sequence():
    # 0..6 should hold 7 numbers; {0, 1, 2, 3, 6} holds 5: 4 and 5 are missing.
    assert dropped_from_sequence([0, 1, 3, 3, 2, 6]) == 2
    assert dropped_from_sequence([]) == 0
