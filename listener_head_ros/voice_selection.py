"""
Which voice the listener follows when several people talk (ros4hri voices, REP-155).

A :class:`VoiceSelector` is told which voices are tracked and when each one starts and stops
speaking, each event with its time, and keeps one *followed* voice: the listener hears only that
voice's audio. The rule is applied at every event, in this order:

1. **Lost.** A followed voice that is no longer tracked is dropped at once (no hold).
2. **Nobody followed.** Follow the tracked voice that is speaking and started speaking most
   recently (ties: the smallest id); no onset time applies, so the first words are not lost.
   With none speaking and exactly one voice tracked, follow that one: a lone voice needs no
   ``is_speaking`` (its audio flows before the first ``is_speaking``, and from sources that
   never publish it). Otherwise follow none.
3. **Floor kept.** The followed voice keeps the floor while it speaks, and through its pauses:
   its silence is audio the model needs (pause cues, the head's return to neutral).
4. **Take-over.** Another voice takes over only when the followed voice has been silent for at
   least ``hold_time`` (counted from when it fell silent, or from when it became followed if
   later) and the other has been speaking without a break for at least ``onset_time``; among
   several such voices, the one that started speaking most recently (ties: the smallest id).

The two thresholds are the hysteresis: overlapping voices never ping-pong, since the followed
one keeps the floor while it speaks (rule 3); a short interjection of another voice (under
``onset_time``) or a short pause of the followed one (under ``hold_time``) changes nothing; and
two take-overs are always at least ``hold_time`` apart, because the new voice was speaking when
it took over and must then be silent that long itself. Only a lost voice (rule 1) switches
sooner. Time is whatever clock the caller passes, in seconds; the rule is evaluated only at
events, so a take-over happens at the first event after both thresholds are met (the voices'
audio messages arrive every few tens of milliseconds). A clock that jumps back (a bag replay
looping to its start) restarts every duration from the time it jumped to.

What a switch means for the listener is the caller's decision (the ros4hri voice input calls
back with the old and the new voice). The recommended rule: reset the model's streaming state,
since its prosodic statistics (the pitch percentiles, the speech and pause timers) belong to the
previous speaker, and keep the pose shaper's state, so that the head starts from where it is
and the speed limits hold across the switch.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Dict, FrozenSet, Iterable, Optional

from listener_head_ros.schema import setting


@dataclass(frozen=True)
class VoiceSelectionConfig:
    """The hysteresis of the switch between voices (see :mod:`voice_selection`)."""

    hold_time: float = setting(
        0.7, 'Silence, s, of the followed voice before another speaking voice may take over '
        '(its pauses shorter than this keep the floor).', (0.0, 30.0))
    onset_time: float = setting(
        0.2, 'Unbroken speech, s, of another voice before it may take over (shorter '
        'interjections are ignored).', (0.0, 30.0))

    def __post_init__(self) -> None:
        for name in ('hold_time', 'onset_time'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'{name} must be a finite number of seconds >= 0')


@dataclass(frozen=True)
class VoiceSwitch:
    """A change of the followed voice: from ``old`` to ``new`` (either None), and why."""

    old: Optional[str]
    new: Optional[str]
    time: float
    reason: str  # 'first' (nobody was followed), 'lost' (old untracked), 'take-over'


@dataclass
class _Voice:
    speaking: bool
    since: float  # time of the last change of ``speaking``, or when the voice was tracked


class VoiceSelector:
    """Keep the followed voice among the tracked ones, by the rule of :mod:`voice_selection`."""

    def __init__(self, config: VoiceSelectionConfig = VoiceSelectionConfig()) -> None:
        self.config = config
        self._voices: Dict[str, _Voice] = {}
        self._followed: Optional[str] = None
        self._followed_since = -math.inf
        self._last = -math.inf  # the latest time seen

    @property
    def followed(self) -> Optional[str]:
        """Return the id of the followed voice, or None."""
        return self._followed

    @property
    def tracked(self) -> FrozenSet[str]:
        """Return the ids of the tracked voices."""
        return frozenset(self._voices)

    @property
    def speaking(self) -> FrozenSet[str]:
        """Return the ids of the tracked voices that are speaking."""
        return frozenset(v for v, state in self._voices.items() if state.speaking)

    def set_tracked(self, ids: Iterable[str], now: float) -> Optional[VoiceSwitch]:
        """Take the list of tracked voices; a new voice starts silent. Return any switch."""
        wanted = set(ids)
        for voice in set(self._voices) - wanted:
            del self._voices[voice]
        for voice in wanted - set(self._voices):
            self._voices[voice] = _Voice(speaking=False, since=now)
        return self.update(now)

    def set_speaking(self, voice: str, speaking: bool, now: float) -> Optional[VoiceSwitch]:
        """Take a voice's ``is_speaking``; repeats and untracked voices change nothing."""
        state = self._voices.get(voice)
        if state is not None and state.speaking != bool(speaking):
            state.speaking, state.since = bool(speaking), now
        return self.update(now)

    def update(self, now: float) -> Optional[VoiceSwitch]:
        """Apply the rule at time ``now``; return the switch it makes, or None."""
        if now < self._last:  # the clock jumped back: every duration counts from now
            for state in self._voices.values():
                state.since = min(state.since, now)
            self._followed_since = min(self._followed_since, now)
        self._last = now
        old = self._followed
        if old is not None and old not in self._voices:
            return self._follow(self._first_choice(now), now, 'lost')
        if old is None:
            new = self._first_choice(now)
            return self._follow(new, now, 'first') if new is not None else None
        state = self._voices[old]
        if state.speaking or now - max(state.since, self._followed_since) < self.config.hold_time:
            return None
        new = self._newest_speaker(now, onset=self.config.onset_time)
        return self._follow(new, now, 'take-over') if new is not None else None

    def _first_choice(self, now: float) -> Optional[str]:
        """Return whom to follow when nobody is: the newest speaker, else a lone voice."""
        new = self._newest_speaker(now, onset=0.0)
        if new is None and len(self._voices) == 1:
            new = next(iter(self._voices))
        return new

    def _newest_speaker(self, now: float, *, onset: float) -> Optional[str]:
        """Return the voice, not the followed one, speaking for ``onset`` s that began last."""
        ready = [(-state.since, voice) for voice, state in self._voices.items()
                 if state.speaking and voice != self._followed and now - state.since >= onset]
        return min(ready)[1] if ready else None

    def _follow(self, new: Optional[str], now: float, reason: str) -> VoiceSwitch:
        switch = VoiceSwitch(self._followed, new, now, reason)
        self._followed, self._followed_since = new, now
        return switch
