"""Unit tests of ListenerEngine with the real prosodic listener and a real ring buffer."""

import dataclasses
import math
from pathlib import Path
import time

import listener_head_ros
import numpy as np
import pytest
import soundfile

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.engine import EngineConfig, ListenerEngine
from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES
from listener_head_ros.models.base import EMPTY_CONTEXT, SideInputs, TranscriptEvent
from listener_head_ros.models.prosodic import ProsodicListener
from listener_head_ros.motion.pose_shaping import MotionLimits

RATE = 16000
BUNDLED_SPEECH = Path(listener_head_ros.__file__).parent / 'data' / 'speech_en.wav'
TOL = 1e-9


@pytest.fixture(scope='module')
def speech() -> np.ndarray:
    """Return the bundled speech recording as mono float32 at 16 kHz."""
    samples, rate = soundfile.read(BUNDLED_SPEECH, dtype='float32')
    assert rate == RATE
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def make_engine(buffer_seconds: float = 2.0, **settings) -> ListenerEngine:
    """Return an engine around a fresh prosodic listener and ring buffer."""
    model = ProsodicListener()
    buffer = AudioRingBuffer(int(buffer_seconds * model.sample_rate))
    return ListenerEngine(model, buffer, EngineConfig(**settings))


def feed_and_tick(engine: ListenerEngine, audio: np.ndarray, hops_per_tick: int = 1) -> list:
    """Write ``hops_per_tick`` hops of audio before every tick; return the tick outputs."""
    chunk = engine.model.hop_length * hops_per_tick
    outputs = []
    for start in range(0, audio.size, chunk):
        engine.buffer.write(audio[start:start + chunk])
        outputs.append(engine.tick())
    return outputs


def test_steps_one_frame_per_complete_hop():
    """A tick steps the model once per complete hop and leaves a partial hop buffered."""
    engine = make_engine()
    hop = engine.model.hop_length
    rng = np.random.default_rng(1)
    engine.buffer.write(0.1 * rng.standard_normal(3 * hop + hop // 2).astype(np.float32))
    output = engine.tick()
    assert (output.frames_stepped, output.frames_dropped, output.state) == (3, 0, 'listening')
    assert engine.frames_stepped == 3 and engine.buffer.available == hop // 2
    output = engine.tick()
    assert (output.frames_stepped, output.state) == (0, 'holding')
    engine.buffer.write(np.zeros(hop - hop // 2, dtype=np.float32))
    assert engine.tick().frames_stepped == 1 and engine.buffer.available == 0
    assert engine.frames_stepped == 4 and engine.frames_dropped == 0


def test_drops_only_audio_older_than_max_latency_and_blames_the_burst():
    """Hops beyond max_latency are dropped whole and counted as a burst; the rest is stepped."""
    engine = make_engine(max_latency=5 / 30)
    hop = engine.model.hop_length
    assert engine.max_backlog_hops == 5
    engine.buffer.write(np.zeros(12 * hop + 7, dtype=np.float32))
    output = engine.tick()
    assert (output.frames_stepped, output.frames_dropped, output.frames_deferred) == (5, 7, 0)
    assert engine.buffer.available == 7  # the partial hop stays
    engine.buffer.write(np.zeros(3 * hop, dtype=np.float32))
    output = engine.tick()
    assert (output.frames_stepped, output.frames_dropped) == (3, 0)
    assert (engine.frames_stepped, engine.frames_dropped_burst, engine.frames_dropped_slow) == (
        8, 7, 0)
    engine.reset()
    assert (engine.frames_stepped, engine.frames_dropped, engine.buffer.available) == (0, 0, 0)


def test_ragged_input_is_caught_up_not_dropped():
    """Chunks of 181 ms (5.4 frames) arriving at once are all stepped when compute allows."""
    engine = make_engine()
    chunk = int(0.181 * RATE)
    for index in range(40):
        engine.buffer.write(np.zeros(chunk, dtype=np.float32))
        for _ in range(5 + index % 2):  # the ticks that pass while the next chunk records
            engine.tick(budget=1.0 / engine.config.frame_rate)
    assert engine.frames_dropped == 0 and engine.ticks_over_budget == 0
    assert engine.frames_stepped == 40 * chunk // engine.model.hop_length


class _SlowModel(ProsodicListener):
    """The embedded listener with a step slower than the 33 ms of audio it consumes."""

    def step(self, samples, context=None):
        time.sleep(0.04)
        return super().step(samples, context)


def test_slow_inference_defers_then_drops_and_is_blamed():
    """Steps slower than real time: one hop per tick, the rest waits, then drops are 'slow'."""
    engine = ListenerEngine(_SlowModel(), AudioRingBuffer(2 * RATE),
                            EngineConfig(max_latency=5 / 30))
    hop = engine.model.hop_length
    outputs = []
    for _ in range(12):  # two hops arrive per tick; a 40 ms step never fits twice in 10 ms
        engine.buffer.write(np.zeros(2 * hop, dtype=np.float32))
        outputs.append(engine.tick(budget=0.01))
    assert [o.frames_stepped for o in outputs] == [1] * 12
    assert [o.frames_deferred for o in outputs[:4]] == [1, 2, 3, 4]
    assert (engine.frames_dropped_slow, engine.frames_dropped_burst) == (8, 0)
    assert engine.ticks_over_budget == 12 and engine.buffer.available == 4 * hop


def test_eases_back_to_neutral_after_the_timeout(speech):
    """Without audio the pose holds until neutral_return_timeout, then eases to exactly zero."""
    engine = make_engine(neutral_return_timeout=0.3, neutral_return_time=0.4)
    outputs = feed_and_tick(engine, speech[:90 * engine.model.hop_length])
    assert outputs[-1].state == 'listening'
    assert max(abs(o.frame.pitch) + abs(o.frame.roll) for o in outputs[-10:]) > 1e-3
    period = 1.0 / engine.config.frame_rate
    states, poses = [], []
    for _ in range(int(round((0.3 + 0.4) / period)) + 5):
        output = engine.tick()
        states.append(output.state)
        poses.append(np.array([output.frame.roll, output.frame.pitch, output.frame.yaw]))
    holding = int(0.3 / period + 1e-6)
    assert set(states[:holding - 1]) == {'holding'}  # (the boundary tick is float rounding)
    assert set(states[holding + 1:]) == {'neutral'}
    assert np.max(np.abs(poses[-1])) < TOL
    magnitudes = [np.max(np.abs(p)) for p in poses[holding:]]
    assert all(b <= a + TOL for a, b in zip(magnitudes, magnitudes[1:])), 'not a smooth ease'
    assert float(np.max(engine.tick().frame.blendshapes)) < 0.5 * max(
        float(np.max(o.frame.blendshapes)) for o in outputs) + TOL
    assert engine.tick().frame.expression == 'neutral'


def test_robot_speaking_suppresses_backchannels_and_goes_to_neutral(speech):
    """While the robot speaks no backchannel is emitted and the head returns to neutral."""
    listening = feed_and_tick(make_engine(), speech[:10 * RATE])
    assert any(o.frame.backchannels for o in listening), 'the speech should cue nods'
    engine = make_engine(neutral_return_time=0.5)
    feed_and_tick(engine, speech[:2 * RATE])
    engine.robot_speaking = True
    outputs = feed_and_tick(engine, speech[2 * RATE:10 * RATE])
    assert {o.state for o in outputs} == {'robot_speaking'}
    assert not any(o.frame.backchannels for o in outputs)
    assert all(o.frames_stepped == 1 for o in outputs[:-1])  # the model still listens
    last = outputs[-1].frame
    assert max(abs(last.roll), abs(last.pitch), abs(last.yaw)) < TOL
    assert last.expression == 'neutral'
    engine.robot_speaking = False
    assert engine.tick().state in ('listening', 'holding')


def test_keeps_backchannels_of_every_frame_stepped_in_a_tick(speech):
    """Events of all frames stepped in one tick are returned, not only the last frame's."""
    audio = speech[:10 * RATE]
    reference = ProsodicListener()
    hop = reference.hop_length
    expected = [(i, e) for i in range(audio.size // hop)
                for e in reference.step(audio[i * hop:(i + 1) * hop]).backchannels]
    assert len(expected) >= 2
    engine = make_engine()
    outputs = feed_and_tick(engine, audio, hops_per_tick=10)
    assert [e for o in outputs for e in o.frame.backchannels] == [e for _, e in expected]
    assert any(i % 10 != 9 for i, _ in expected), 'an event should come from a non-last frame'


def _adversarial_audio(rng: np.random.Generator, speech: np.ndarray) -> list:
    """Return a random sequence of (kind, samples) segments of hostile audio."""
    t = np.arange(int(rng.uniform(0.3, 1.5) * RATE)) / RATE
    n = t.size
    makers = {
        'noise': lambda: rng.uniform(-1.0, 1.0, n),
        'loud_noise': lambda: np.clip(rng.standard_normal(n) * 5.0, -1.0, 1.0),
        'square': lambda: np.sign(np.sin(2 * np.pi * rng.uniform(60, 2000) * t)),
        'clipped_speech': lambda: np.clip(speech[:n] * rng.uniform(5, 50), -1.0, 1.0),
        'dc': lambda: np.full(n, rng.choice([-1.0, -0.5, 0.5, 1.0])),
        'nan': lambda: np.where(rng.random(n) < 0.5, np.nan,
                                rng.choice([np.inf, -np.inf, 0.3], n)),
        'silence': lambda: np.zeros(n),
        'speech': lambda: speech[rng.integers(0, speech.size - n):][:n],
        'burst_10s': lambda: speech[:10 * RATE] * 4.0,
    }
    kinds = list(rng.permutation(list(makers)))
    return [(kind, np.asarray(makers[kind](), dtype=np.float32)) for kind in kinds]


@pytest.mark.parametrize('seed', range(6))
def test_outputs_stay_safe_on_adversarial_audio(seed, speech):
    """On hostile audio every output is finite, within limits and under the speed limit."""
    rng = np.random.default_rng(seed)
    tight = seed % 2 == 1
    limits = MotionLimits(-0.05, 0.05, -0.04, 0.06, -0.08, 0.08, 0.2) if tight else MotionLimits()
    engine = make_engine(limits=limits, max_latency=float(rng.uniform(0.03, 0.2)),
                         smoothing_time_constant=float(rng.choice([0.0, 0.08])),
                         neutral_return_timeout=0.2, neutral_return_time=0.3)
    hop = engine.model.hop_length
    lower, upper = limits.lower, limits.upper
    ticks = 0
    for kind, samples in _adversarial_audio(rng, speech):
        position = 0
        while position < samples.size:
            chunk = int(rng.choice([1, hop // 3, hop, 3 * hop, 20 * hop, samples.size]))
            engine.buffer.write(samples[position:position + chunk])
            position += chunk
            engine.robot_speaking = bool(rng.random() < 0.05)
            output = engine.tick()
            ticks += 1
            pose = np.array([output.frame.roll, output.frame.pitch, output.frame.yaw])
            velocity = np.asarray(output.angular_velocity, dtype=float)
            assert np.all(np.isfinite(pose)) and np.all(np.isfinite(velocity)), kind
            assert np.all(pose >= lower - TOL) and np.all(pose <= upper + TOL), (kind, pose)
            assert np.all(np.abs(velocity) <= limits.max_angular_velocity + TOL), (kind, velocity)
            _assert_face_in_range(output.frame, kind)
            assert output.frames_stepped <= engine.max_backlog_hops
        for _ in range(int(rng.integers(0, 15))):  # a gap without audio
            output = engine.tick()
            assert np.all(np.abs(output.angular_velocity) <= limits.max_angular_velocity + TOL)
    assert ticks > 10 and engine.frames_stepped > 0


def _assert_face_in_range(frame, kind: str) -> None:
    """Check that the facial outputs of a frame are finite and inside their ranges."""
    blendshapes = np.asarray(frame.blendshapes, dtype=float)
    units = np.asarray(frame.action_units, dtype=float)
    assert blendshapes.shape == (len(ARKIT_BLENDSHAPES),) and units.shape == (len(ACTION_UNITS),)
    for values in (blendshapes, units):
        assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1)), kind
    for value in (frame.valence, frame.arousal):
        assert math.isfinite(value) and -1.0 <= value <= 1.0, kind
    assert math.isfinite(frame.confidence) and 0.0 <= frame.confidence <= 1.0, kind
    for event in frame.backchannels:
        assert 0.0 <= event.intensity <= 1.0 and 0.0 < event.duration < 10.0, kind


class _ContextModel(ProsodicListener):
    """The prosodic listener, recording the context of every step (declares side inputs)."""

    inputs = frozenset({'audio', 'transcript', 'robot_speaking'})

    def __init__(self) -> None:
        super().__init__()
        self.contexts = []

    def step(self, hop, context=EMPTY_CONTEXT):
        self.contexts.append(context)
        return super().step(hop, context)


def test_each_step_gets_the_side_inputs_known_by_its_hop(speech):
    """Transcripts reach the next step once; the robot state and stream time are in context."""
    model = _ContextModel()
    engine = ListenerEngine(model, AudioRingBuffer(2 * RATE), EngineConfig())
    hop = model.hop_length
    engine.buffer.write(speech[:2 * hop])
    engine.add_transcript(TranscriptEvent(time=0.01, text='hello there', final=False))
    engine.tick()
    engine.set_robot_speaking(True)
    engine.buffer.write(speech[2 * hop:3 * hop])
    engine.tick()
    first, second, third = model.contexts
    assert [e.text for e in first.transcripts] == ['hello there'] and not second.transcripts
    assert not first.robot_speaking and third.robot_speaking
    np.testing.assert_allclose([c.time for c in model.contexts],
                               np.arange(1, 4) * hop / RATE, atol=TOL)
    engine.reset()
    assert engine.time == 0.0


def _delivered(model) -> list:
    """Return, per step, the texts of the transcript events its context carried."""
    return [tuple(e.text for e in c.transcripts) for c in model.contexts]


def test_a_live_transcript_waits_for_the_step_of_the_audio_it_arrived_with(speech):
    """
    A result is stamped with the audio received by then (stepped plus buffered).

    It reaches the first step whose hop ends at or after that time: a backlog stepped in one
    tick sees no text from the future.
    """
    model = _ContextModel()
    engine = ListenerEngine(model, AudioRingBuffer(2 * RATE), EngineConfig())
    hop, seconds = model.hop_length, model.hop_length / RATE
    engine.buffer.write(speech[:3 * hop])
    first = engine.add_live_transcript('  so I said  ', final=False, confidence=0.4)
    assert (first.text, first.final, first.confidence) == ('so I said', False, 0.4)
    assert first.time == pytest.approx(3 * seconds, abs=TOL)
    engine.buffer.write(speech[3 * hop:4 * hop + hop // 2])
    second = engine.add_live_transcript('so I said no')  # half a hop after step 4's end
    engine.buffer.write(speech[4 * hop + hop // 2:6 * hop])
    engine.tick()  # six hops in one tick
    assert _delivered(model) == [(), (), ('so I said',), (), ('so I said no',), ()]
    assert second.time == pytest.approx((4 * hop + hop // 2) / RATE, abs=TOL)
    assert engine.add_live_transcript('after').time == pytest.approx(engine.time, abs=TOL)
    assert engine.pending_transcripts == 1
    engine.buffer.write(speech[6 * hop:7 * hop])
    engine.tick()
    assert _delivered(model)[-1] == ('after',) and engine.pending_transcripts == 0
    assert (engine.transcripts_received, engine.transcripts_delivered) == (3, 3)


def test_dropped_audio_moves_a_pending_transcript_with_it(speech):
    """When old hops are dropped (max_latency), a pending event keeps to its audio."""
    model = _ContextModel()
    engine = ListenerEngine(model, AudioRingBuffer(2 * RATE), EngineConfig(max_latency=0.07))
    hop = model.hop_length
    assert engine.max_backlog_hops == 2
    engine.buffer.write(speech[:4 * hop])
    engine.add_live_transcript('heard with hop four')
    engine.buffer.write(speech[4 * hop:5 * hop])  # hop five arrives after the text
    output = engine.tick()
    assert (output.frames_dropped, output.frames_stepped) == (3, 2)
    assert _delivered(model) == [('heard with hop four',), ()]


def test_transcripts_are_bounded_capped_and_counted():
    """
    Beyond the pending limit the oldest results go; a long text keeps its end.

    An empty text is ignored; each case is counted; reset forgets the queue and the counters.
    """
    from listener_head_ros.engine import MAX_PENDING_TRANSCRIPTS, MAX_TRANSCRIPT_CHARS
    model = _ContextModel()
    engine = ListenerEngine(model, AudioRingBuffer(2 * RATE), EngineConfig())
    for index in range(MAX_PENDING_TRANSCRIPTS + 3):
        engine.add_live_transcript(f'result {index}')
    assert engine.add_live_transcript(' \n') is None
    long = engine.add_live_transcript('x' * MAX_TRANSCRIPT_CHARS + 'the end')
    assert len(long.text) == MAX_TRANSCRIPT_CHARS and long.text.endswith('the end')
    assert (engine.transcripts_received, engine.transcripts_ignored,
            engine.transcripts_dropped, engine.transcripts_truncated,
            engine.pending_transcripts) == (
        MAX_PENDING_TRANSCRIPTS + 5, 1, 4, 1, MAX_PENDING_TRANSCRIPTS)
    engine.buffer.write(np.zeros(model.hop_length, dtype=np.float32))
    engine.tick()
    texts = _delivered(model)[0]
    assert texts[0] == 'result 4' and texts[-1] == long.text
    assert engine.transcripts_delivered == MAX_PENDING_TRANSCRIPTS
    engine.add_live_transcript('left over')
    engine.reset()
    assert engine.pending_transcripts == 0 and engine.transcripts_received == 0


def test_live_transcripts_from_another_thread_never_reach_an_earlier_step(speech):
    """
    Audio and results arrive from a callback thread while ticks step.

    Every event reaches exactly one step, never one whose hop ends before the audio the event
    arrived with, and at most one hop after it.
    """
    import threading
    model = _ContextModel()
    engine = ListenerEngine(model, AudioRingBuffer(2 * RATE), EngineConfig())
    hop, stamps = model.hop_length, []
    done = threading.Event()

    def callbacks() -> None:
        for index, start in enumerate(range(0, 120 * hop, 200)):
            engine.buffer.write(speech[start:start + 200])
            if index % 3 == 0:
                stamps.append(engine.add_live_transcript(f'r{index}'))
            time.sleep(0.0005)
        done.set()

    thread = threading.Thread(target=callbacks)
    thread.start()
    while not done.is_set():
        engine.tick()
    thread.join()
    engine.buffer.write(np.zeros(hop, dtype=np.float32))
    engine.tick()
    delivered = {e.text: c.time for c in model.contexts for e in c.transcripts}
    assert sorted(delivered) == sorted(e.text for e in stamps)
    period = hop / RATE
    for event in stamps:
        assert event.time - TOL <= delivered[event.text] < event.time + period + TOL, event


def test_offline_contexts_match_what_the_engine_hands_out():
    """SideInputs.contexts gives each frame the events and state known at the end of its hop."""
    side = SideInputs(transcripts=[TranscriptEvent(0.05, 'b'), TranscriptEvent(0.01, 'a'),
                                   TranscriptEvent(0.19, 'c', final=True)],
                      robot_speaking=[(0.09, True), (0.14, False)])
    contexts = side.contexts(8, 1.0 / 30.0)
    assert [tuple(e.text for e in c.transcripts) for c in contexts] == [
        ('a',), ('b',), (), (), (), ('c',), (), ()]
    assert [c.robot_speaking for c in contexts] == [
        False, False, True, True, False, False, False, False]
    np.testing.assert_allclose([c.time for c in contexts], np.arange(1, 9) / 30.0, atol=TOL)


class _NaNModel(ProsodicListener):
    """A model whose every output is NaN, as a checkpoint with NaN weights gives."""

    def step(self, hop, context=EMPTY_CONTEXT):
        frame = super().step(hop, context)
        nan = float('nan')
        return dataclasses.replace(frame, roll=nan, pitch=nan, yaw=nan, valence=nan,
                                   blendshapes=frame.blendshapes * nan)


def test_non_finite_model_output_is_counted_and_never_passed_on(speech):
    """Every NaN frame is counted; the shaped pose stays finite and inside the limits."""
    model = _NaNModel()
    engine = ListenerEngine(model, AudioRingBuffer(2 * RATE), EngineConfig())
    outputs = feed_and_tick(engine, speech[:RATE])
    assert engine.nonfinite_frames == engine.frames_stepped > 0
    assert all(np.isfinite(o.frame.pose).all() for o in outputs)
    engine.reset()
    assert engine.nonfinite_frames == 0


def test_a_learned_head_is_not_low_passed_a_rule_based_one_is():
    """The pose low-pass applies to a rule (the embedded model), not to a predicted head."""
    rule = ProsodicListener()
    assert ListenerEngine(rule, AudioRingBuffer(RATE), EngineConfig()).shaper \
        .smoothing_time_constant == EngineConfig().smoothing_time_constant > 0
    learned = ProsodicListener()
    learned.outputs = {'head': 'predicted'}
    engine = ListenerEngine(learned, AudioRingBuffer(RATE), EngineConfig())
    assert engine.smoothing_time_constant == engine.shaper.smoothing_time_constant == 0.0


def test_reaction_policy_draws_at_turn_onsets_only_and_by_seed():
    """A loud hop after turn_pause of silence is an onset; 'turn' then draws another sample."""
    from listener_head_ros.engine import ReactionPolicy
    hop, seconds = 533, 533 / RATE
    loud = np.full(hop, 0.1, dtype=np.float32)  # -20 dBFS
    quiet = np.full(hop, 0.001, dtype=np.float32)  # -60 dBFS

    def run(config, pattern):
        policy = ReactionPolicy(config, num_samples=5)
        history = []
        for token in pattern:
            if token == 'L':
                policy.hear(loud, seconds)
            elif token == 'q':
                policy.hear(quiet, seconds)
            else:
                policy.wait(seconds)  # no audio at all
            history.append(policy.reaction)
        return policy, history

    pause = 'q' * 40 + '-' * 5  # 1.5 s of silence: quiet hops, then no audio
    pattern = 'L' * 10 + 'q' * 10 + 'L' * 10 + pause + 'L' * 10 + pause + 'L' * 10
    config = EngineConfig(reaction_redraw='turn', turn_pause=1.0, reaction_seed=7)
    policy, history = run(config, pattern)
    assert policy.turns == 3  # the first speech, and after each long pause; not the short one
    changes = [i for i in range(1, len(history)) if history[i] != history[i - 1]]
    assert history[0] != 0 and changes == [30 + len(pause), 30 + 2 * len(pause) + 10]
    assert run(config, pattern)[1] == history
    assert run(dataclasses.replace(config, reaction_redraw='never'), pattern)[1] == [0] * len(
        pattern)
    one = ReactionPolicy(config, num_samples=1)
    assert not one.hear(quiet, seconds) and one.hear(loud, seconds) and one.reaction == 0
    with pytest.raises(ValueError, match='reaction_redraw'):
        EngineConfig(reaction_redraw='sometimes')


def test_a_generative_model_without_select_reaction_is_refused():
    """The engine refuses a multi-sample model it could not keep on one reaction."""
    class ThreeReactions(ProsodicListener):
        num_samples = 3  # a stand-in for a generative model without select_reaction

    with pytest.raises(ValueError, match='select_reaction'):
        ListenerEngine(ThreeReactions(), AudioRingBuffer(RATE))
