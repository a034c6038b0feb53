"""
Latency and rate statistics from message timestamps, for replay evaluation and benchmarks.

All times are in seconds. Given a publish and a receive stamp per message,
:func:`latency_stats` reports latency percentiles; given the receive (or publish) stamps of a
stream, :func:`rate_stats` reports its rate, the gaps longer than ``gap_periods`` expected
periods and an estimate of the dropped messages. :func:`dropped_from_sequence` counts the
missing numbers of a message counter when one is available.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

PERCENTILES = (50.0, 90.0, 99.0)


def _as_stamps(stamps: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(stamps, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f'{name} must be a 1-d sequence of times, got shape {array.shape}')
    if not np.all(np.isfinite(array)):
        raise ValueError(f'{name} must be finite')
    return array


def _json_dict(obj: Any) -> Dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(obj).items()}


@dataclass(frozen=True)
class LatencyStats:
    """
    Latency (receive minus publish) of paired messages, in seconds.

    Percentiles use linear interpolation (``numpy.percentile``'s default). With no message
    every statistic is NaN.
    """

    count: int
    mean_s: float
    min_s: float
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary (NaN becomes None)."""
        return _json_dict(self)


def latency_stats(publish: Sequence[float], receive: Sequence[float]) -> LatencyStats:
    """
    Return latency statistics of messages published at ``publish[i]``, received at ``receive[i]``.

    A negative latency (clock offset between machines) is kept as is, so ``min_s`` shows it.

    :raises ValueError: if the two sequences differ in length or hold a non-finite value.
    """
    sent = _as_stamps(publish, 'publish')
    got = _as_stamps(receive, 'receive')
    if sent.shape != got.shape:
        raise ValueError(f'{sent.size} publish stamps for {got.size} receive stamps')
    if sent.size == 0:
        return LatencyStats(0, *([math.nan] * 6))
    latency = got - sent
    p50, p90, p99 = (float(v) for v in np.percentile(latency, PERCENTILES))
    return LatencyStats(count=int(latency.size), mean_s=float(latency.mean()),
                        min_s=float(latency.min()), p50_s=p50, p90_s=p90, p99_s=p99,
                        max_s=float(latency.max()))


@dataclass(frozen=True)
class RateStats:
    """
    Rate and continuity of a stream of messages.

    ``rate_hz`` is ``(count - 1) / (last - first)``. ``period_s`` is the expected period
    (``1 / expected_rate_hz``, or the median interval when no rate is given). A gap is an
    interval longer than ``gap_periods * period_s``; ``dropped`` estimates the messages lost,
    ``sum(round(interval / period_s) - 1)`` over the gaps.
    """

    count: int
    duration_s: float
    rate_hz: float
    period_s: float
    interval_p50_s: float
    interval_p99_s: float
    interval_max_s: float
    gaps: int
    dropped: int

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary (NaN becomes None)."""
        return _json_dict(self)


def rate_stats(stamps: Sequence[float], expected_rate_hz: Optional[float] = None,
               gap_periods: float = 2.0) -> RateStats:
    """
    Return the rate, interval percentiles, gaps and estimated drops of a stream.

    The stamps are sorted first (a late message is not a negative interval). With fewer than
    two stamps, or a zero duration, the rate and the interval figures are NaN.

    :raises ValueError: on a non-positive ``expected_rate_hz`` or ``gap_periods`` < 1.
    """
    times = np.sort(_as_stamps(stamps, 'stamps'))
    if expected_rate_hz is not None and not expected_rate_hz > 0.0:
        raise ValueError(f'expected_rate_hz must be positive, got {expected_rate_hz}')
    if not gap_periods >= 1.0:
        raise ValueError(f'gap_periods must be at least 1, got {gap_periods}')
    period = 1.0 / expected_rate_hz if expected_rate_hz is not None else math.nan
    if times.size < 2:
        return RateStats(count=int(times.size), duration_s=0.0, rate_hz=math.nan,
                         period_s=period, interval_p50_s=math.nan, interval_p99_s=math.nan,
                         interval_max_s=math.nan, gaps=0, dropped=0)
    intervals = np.diff(times)
    duration = float(times[-1] - times[0])
    if expected_rate_hz is None:
        period = float(np.median(intervals))
    rate = (times.size - 1) / duration if duration > 0.0 else math.nan
    if period > 0.0:
        gap = intervals[intervals > gap_periods * period]
        dropped = int(np.sum(np.maximum(np.round(gap / period) - 1.0, 0.0)))
    else:
        gap, dropped = intervals[:0], 0
    p50, p99 = (float(v) for v in np.percentile(intervals, (50.0, 99.0)))
    return RateStats(count=int(times.size), duration_s=duration, rate_hz=rate, period_s=period,
                     interval_p50_s=p50, interval_p99_s=p99,
                     interval_max_s=float(intervals.max()), gaps=int(gap.size),
                     dropped=dropped)


def dropped_from_sequence(sequence: Sequence[int]) -> int:
    """
    Return how many numbers are missing from a message counter between its first and last.

    Duplicates and reordering do not count: ``[0, 1, 3, 3, 2, 6]`` misses 4 and 5, so 2.
    """
    numbers = np.unique(np.asarray(sequence, dtype=np.int64))
    if numbers.size == 0:
        return 0
    return int(numbers[-1] - numbers[0] + 1 - numbers.size)
