"""
Evaluation reports: ``metrics.json``, ``summary.md`` and PNG plots for a bag.

:func:`evaluate_bag` runs the offline evaluation, the replay through the real node, or both,
and :func:`write_report` writes the report directory:

``metrics.json``
    every figure of every mode (per-axis MAE in degrees, Pearson's r, the neutral baseline,
    per utterance, dropped frames, latency, REACT where applicable) and, for ``both``, the
    replay-minus-offline differences.
``summary.md``
    a Markdown table of the main figures, the offline vs replay differences and what explains
    them (dropped frames, latency, clock jumps), and the bag's warnings.
``poses.png``
    predicted vs ground-truth roll, pitch and yaw over time, listener turns shaded.
``errors.png``
    the distribution of the prediction error per axis over the scored frames.
``latency.png``
    the replay's tick latency histogram (clock message to received ``HeadPose``).
``events.png``
    nods and other backchannels against the speakers' turns.

This module is ROS-free: the replay (which needs rclpy) is passed in as a callable, which
``training/evaluate.py`` builds from :func:`listener_head_ros.ros.bag_replay.replay_bag`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from listener_head_ros.bags.reader import BagContents, BagError, read_bag
from listener_head_ros.eval.offline import evaluate_offline
from listener_head_ros.eval.scoring import EvalResult, score_trace
from listener_head_ros.head_profile import AXES

MODES = ('offline', 'replay', 'both')
PLOTS = ('poses.png', 'errors.png', 'latency.png', 'events.png')
_COLORS = {'truth': 'black', 'offline': 'tab:blue', 'replay': 'tab:orange'}

# replayer(contents, model, params_file, rate, loops, lockstep, progress) -> ReplayResult
Replayer = Callable[..., Any]


@dataclass
class EvaluationRun:
    """The results of one ``evaluate`` call on one bag."""

    contents: BagContents
    model: str
    results: Dict[str, EvalResult]  # 'offline' and/or 'replay'
    replay_passes: List[EvalResult] = field(default_factory=list)  # passes after the first
    replay_info: Dict[str, Any] = field(default_factory=dict)


def evaluate_bag(bag: Path | str, model: str = 'prosodic', mode: str = 'both',
                 params_file: Optional[Path] = None, rate: float = 1.0, loops: int = 1,
                 lockstep: bool = False, show_progress: bool = True,
                 replayer: Optional[Replayer] = None,
                 warn: Callable[[str], None] = lambda text: print(f'warning: {text}',
                                                                  file=sys.stderr)
                 ) -> EvaluationRun:
    """Read ``bag`` and evaluate ``model`` on it offline, by replay (with ``replayer``) or both."""
    from tqdm import tqdm
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, not {mode!r}')
    if mode != 'offline' and replayer is None:
        raise ValueError(f'mode {mode!r} replays through the ROS node: run training/evaluate.py '
                         '(or pass a replayer)')
    contents = read_bag(bag)
    for warning in contents.warnings:  # before the work, so that nobody waits for nothing
        warn(warning)
    run = EvaluationRun(contents, model, {})
    if mode in ('offline', 'both'):
        with tqdm(total=round(contents.duration, 1), unit='s', desc='offline',
                  disable=not show_progress) as bar:
            run.results['offline'] = evaluate_offline(
                contents, model, params_file, progress=_advance(bar))
    if mode in ('replay', 'both'):
        with tqdm(total=round(contents.duration * loops, 1), unit='s',
                  desc=f'replay x{rate:g}', disable=not show_progress) as bar:
            replay = replayer(contents, model, params_file, rate, loops, lockstep,
                              _advance(bar))
        if not replay.segments:
            raise BagError('the listener published no pose during the replay')
        scored = [score_trace('replay' if i == 0 else f'replay pass {i + 1}', trace, contents)
                  for i, trace in enumerate(replay.segments)]
        for result in scored:
            result.wall_seconds = replay.wall_seconds / len(scored)
            result.audio_seconds = contents.audio_seconds
            result.trace.notes.extend(replay.notes)
        run.results['replay'], run.replay_passes = scored[0], scored[1:]
        run.replay_info = {
            'rate': rate, 'loops': loops, 'lockstep': lockstep,
            'clock_jumps': [{'from': a, 'to': b} for a, b in replay.clock_jumps],
            'segments': len(replay.segments), 'diagnostics': replay.diagnostics,
            'wall_seconds': replay.wall_seconds, 'lockstep_waits': replay.lockstep_waits,
            'lockstep_wait_seconds': replay.lockstep_wait_seconds, 'notes': replay.notes}
    return run


def _advance(bar):
    state = {'done': 0.0}

    def update(seconds: float) -> None:
        step = round(seconds, 1) - state['done']
        if step > 0:
            bar.update(step)
            state['done'] += step
    return update


def comparison(offline: EvalResult, replay: EvalResult) -> Dict[str, Any]:
    """Return replay-minus-offline differences of the head metrics, with their explanation."""
    out: Dict[str, Any] = {}
    if offline.head and replay.head:
        out['mae_deg'] = {a: replay.head.mae_deg[a] - offline.head.mae_deg[a] for a in AXES}
        out['mae_mean_deg'] = replay.head.mae_mean_deg - offline.head.mae_mean_deg
        out['pearson'] = {a: _diff(replay.head.pearson[a], offline.head.pearson[a])
                          for a in AXES}
        out['max_abs_mae_diff_deg'] = max(abs(v) for v in out['mae_deg'].values())
    out['frames_dropped'] = {'offline': offline.trace.frames_dropped,
                             'replay': replay.trace.frames_dropped}
    out['poses'] = {'offline': int(offline.trace.times.size),
                    'replay': int(replay.trace.times.size)}
    a_times, b_times = offline.trace.times, replay.trace.times
    index = np.clip(np.searchsorted(a_times, b_times), 1, max(a_times.size - 1, 1))
    if a_times.size >= 2 and b_times.size:
        nearest = np.where(np.abs(a_times[index - 1] - b_times) < np.abs(a_times[index] - b_times),
                           index - 1, index)
        same = np.abs(a_times[nearest] - b_times) < 1e-3
        out['common_stamps'] = int(np.count_nonzero(same))
        if np.any(same):
            out['max_pose_diff_deg_at_common_stamps'] = float(np.degrees(np.abs(
                offline.trace.poses[nearest[same]] - replay.trace.poses[same])).max())
    else:
        out['common_stamps'] = 0
    return out


def _diff(a: float, b: float) -> Optional[float]:
    return None if (a is None or b is None or math.isnan(a) or math.isnan(b)) else a - b


def metrics_dict(run: EvaluationRun) -> Dict[str, Any]:
    """Return everything ``metrics.json`` holds."""
    c = run.contents
    data: Dict[str, Any] = {
        'bag': str(c.path), 'model': run.model, 'duration_s': c.duration,
        'audio_messages': len(c.audio_payloads),
        'audio_format': (None if c.audio_format is None else {
            'channels': c.audio_format.channels, 'sample_rate': c.audio_format.sample_rate,
            'sample_format': c.audio_format.sample_format}),
        'listener_turns': sum(t.is_listener_sample for t in c.turns),
        'warnings': list(c.warnings),
    }
    for name, result in run.results.items():
        data[name] = result.to_dict()
    if 'replay' in run.results:
        data['replay']['run'] = run.replay_info
        data['replay']['later_passes'] = [p.to_dict() for p in run.replay_passes]
    if len(run.results) == 2:
        data['difference'] = comparison(run.results['offline'], run.results['replay'])
    return data


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def summary_markdown(run: EvaluationRun, data: Dict[str, Any]) -> str:
    """Return ``summary.md``."""
    names = list(run.results)
    extra = ' | replay - offline |' if len(names) == 2 else ' |'
    lines = [f'# Evaluation of `{run.model}` on `{run.contents.path.name}`', '',
             f'Bag: `{run.contents.path}`, {run.contents.duration:.1f} s, '
             f'{data["listener_turns"]} listener turns (the other actor speaks).', '',
             '| metric | ' + ' | '.join(names) + extra,
             '|---|' + '---|' * (len(names) + (len(names) == 2))]

    def row(label: str, values: List[Any], diff: Any = None) -> None:
        cells = [_fmt(v) for v in values]
        if len(names) == 2:
            cells.append(_fmt(diff, 4))
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    heads = [run.results[n].head for n in names]
    diff = data.get('difference', {})
    for axis in AXES:
        row(f'MAE {axis} (deg)', [h.mae_deg[axis] if h else None for h in heads],
            diff.get('mae_deg', {}).get(axis))
    row('MAE mean (deg)', [h.mae_mean_deg if h else None for h in heads],
        diff.get('mae_mean_deg'))
    for axis in AXES:
        row(f'Pearson r {axis}', [h.pearson[axis] if h else None for h in heads],
            diff.get('pearson', {}).get(axis))
    row('neutral baseline MAE (deg)',
        [run.results[n].baseline.mae_mean_deg if run.results[n].baseline else None
         for n in names])
    row('utterances scored', [h.n_utterances if h else 0 for h in heads])
    row('poses', [int(run.results[n].trace.times.size) for n in names])
    row('frames stepped', [run.results[n].trace.frames_stepped for n in names])
    row('dropped frames', [run.results[n].trace.frames_dropped for n in names])
    row('backchannels', [len(run.results[n].trace.backchannels) for n in names])
    row('x real time', [run.results[n].real_time_factor for n in names])
    if 'replay' in run.results:
        latency = run.results['replay'].trace.latency
        tick, age = latency.get('tick_latency', {}), latency.get('audio_age', {})
        lines += ['', '## Replay', '',
                  f'- rate x{run.replay_info["rate"]:g}, lockstep '
                  f'{run.replay_info["lockstep"]}, {run.replay_info["loops"]} pass(es), '
                  f'{run.replay_info["wall_seconds"]:.1f} s wall',
                  f'- tick latency (clock -> HeadPose received, wall ms): p50 '
                  f'{_ms(tick.get("p50_s"))}, p99 {_ms(tick.get("p99_s"))}, max '
                  f'{_ms(tick.get("max_s"))}',
                  f'- audio age (newest audio published -> HeadPose received, wall ms): p50 '
                  f'{_ms(age.get("p50_s"))}, p99 {_ms(age.get("p99_s"))}']
        jumps = run.replay_info['clock_jumps']
        if jumps:
            lines.append(f'- **clock jumped back {len(jumps)} time(s)** (looped bag): the '
                         f'recording was split into {run.replay_info["segments"]} segments, '
                         'each scored on its own; every replay figure of the table is the '
                         'first pass\'s')
            passes = [run.results['replay']] + run.replay_passes
            for i, result in enumerate(passes, start=1):
                lines.append(f'  - pass {i}: {_pass_figures(result)}')
            lines.append(f'  - all passes: {_pass_figures(*passes)}')
        lines += [f'- {note}' for note in run.replay_info['notes']]
    if len(names) == 2:
        explanation = _explain(data['difference'], run.replay_info)
        lines += ['', '## Why offline and replay differ', '', explanation]
    if run.contents.warnings:
        lines += ['', '## Warnings', ''] + [f'- {w}' for w in run.contents.warnings]
    react = run.results[names[0]].react
    lines += ['', '## REACT metrics', '',
              (f'Computed on head angles (see metrics.json): {react.get("not_computed")} not '
               'computed.' if react.get('computed') else f'Not computed: {react.get("reason")}.'
               ' FRSyn and the 25-d facial versions also need facial attributes that a '
               'head-only bag lacks.')]
    lines += ['', 'Plots: ' + ', '.join(f'[{p}]({p})' for p in PLOTS), '']
    return '\n'.join(lines)


def _pass_figures(*results: EvalResult) -> str:
    """Return one line of figures over the given replay passes (means weighted by turns)."""
    turns = sum(r.head.n_utterances for r in results if r.head)
    mae = (sum(r.head.mae_mean_deg * r.head.n_utterances for r in results if r.head) / turns
           if turns else None)
    return (f'MAE mean {_fmt(mae)} deg over {turns} turns, '
            f'{sum(r.trace.times.size for r in results)} poses, '
            f'{sum(r.trace.frames_stepped for r in results)} frames stepped, '
            f'{sum(r.trace.frames_dropped for r in results)} dropped, '
            f'{sum(len(r.trace.backchannels) for r in results)} backchannels')


def _ms(seconds: Optional[float]) -> str:
    return 'n/a' if seconds is None else f'{seconds * 1e3:.1f}'


def _explain(diff: Dict[str, Any], info: Dict[str, Any]) -> str:
    dropped = diff['frames_dropped']['replay']
    parts = [f'Largest per-axis MAE difference: '
             f'{_fmt(diff.get("max_abs_mae_diff_deg"), 4)} deg; largest pose difference at '
             f'the same stamp: {_fmt(diff.get("max_pose_diff_deg_at_common_stamps"), 4)} deg '
             f'over {diff["common_stamps"]} common stamps.']
    if dropped:
        parts.append(f'The node dropped {dropped} frame(s) (audio older than max_latency when '
                     f'its tick came, at rate x{info["rate"]:g}): those hops never reached the '
                     'model, so its state and output diverge from the offline run.')
    if diff['poses']['replay'] < diff['poses']['offline']:
        parts.append(f'The replay has {diff["poses"]["replay"]} poses for '
                     f'{diff["poses"]["offline"]} ticks offline: the node skipped ticks whose '
                     'clock messages it processed late (an rcl timer fires once after a jump '
                     'over several periods), so one tick then steps several hops.')
    if not dropped and diff['poses']['replay'] == diff['poses']['offline']:
        parts.append('No frame was dropped and every tick was answered: the node ran the '
                     'same loop on the same audio, so the remaining difference comes from '
                     'audio messages that reached the node after the tick they belonged to '
                     '(timing), if any.')
    return ' '.join(parts)


def write_report(run: EvaluationRun, out_dir: Path | str) -> Path:
    """Write ``metrics.json``, ``summary.md`` and the plots into ``out_dir``; return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = metrics_dict(run)
    (out / 'metrics.json').write_text(json.dumps(data, indent=2, default=_json_default) + '\n')
    (out / 'summary.md').write_text(summary_markdown(run, data))
    plot_report(run, out)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def plot_report(run: EvaluationRun, out: Path) -> None:
    """Write the four PNG plots of the report."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    c, t0 = run.contents, run.contents.start
    listener = [t for t in c.turns if t.is_listener_sample]

    fig, axes = plt.subplots(3, 1, figsize=(12, 7), sharex=True)
    for a, (ax, name) in enumerate(zip(axes, AXES)):
        for turn in listener:
            ax.axvspan(turn.start - t0, turn.end - t0, color='0.92')
        ax.plot(c.truth_times - t0, np.degrees(c.truth[:, a]), color=_COLORS['truth'], lw=0.8,
                label='ground truth')
        for label, result in run.results.items():
            ax.plot(result.trace.times - t0, np.degrees(result.trace.poses[:, a]),
                    color=_COLORS[label], lw=1.0, alpha=0.85, label=label)
        ax.set_ylabel(f'{name} (deg)')
    axes[0].legend(loc='upper right', fontsize=8)
    axes[0].set_title('head pose: prediction vs ground truth (shaded: listener turns)')
    axes[-1].set_xlabel('bag time (s)')
    fig.tight_layout()
    fig.savefig(out / 'poses.png', dpi=100)
    plt.close(fig)

    scored = {label: result for label, result in run.results.items() if result.utterances}
    if scored:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        for a, (ax, name) in enumerate(zip(axes, AXES)):
            for label, result in scored.items():
                errors = [np.degrees(u.pred[:, a] - u.truth[:, a]) for u in result.utterances]
                ax.hist(np.concatenate(errors), bins=40, alpha=0.6, color=_COLORS[label],
                        label=label)
            ax.set_title(f'{name} error (deg)')
        axes[0].legend(fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.text(0.5, 0.5, 'no listener turn could be scored:\n'
                + '\n'.join(c.warnings or ['see metrics.json, dropped_turns']),
                ha='center', va='center', wrap=True)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out / 'errors.png', dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    samples = (run.results['replay'].trace.latency.get('tick_latency_samples_s', [])
               if 'replay' in run.results else [])
    if samples:
        ax.hist(np.asarray(samples) * 1e3, bins=50, color=_COLORS['replay'])
        ax.set_xlabel('tick latency: clock published -> HeadPose received (wall ms)')
        ax.set_ylabel('poses')
    else:
        ax.text(0.5, 0.5, 'no replay in this evaluation:\nlatency is measured by replay only',
                ha='center', va='center')
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out / 'latency.png', dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(12, 3))
    speakers = sorted({t.speaker for t in c.turns})
    for turn in c.turns:
        y = speakers.index(turn.speaker)
        ax.broken_barh([(turn.start - t0, turn.end - turn.start)], (y - 0.3, 0.6),
                       color='tab:green' if turn.is_listener_sample else '0.7')
    for k, (label, result) in enumerate(run.results.items()):
        times = [e[0] - t0 for e in result.trace.backchannels]
        kinds = [e[1] for e in result.trace.backchannels]
        y = len(speakers) + k
        ax.scatter(times, [y] * len(times), marker='v', color=_COLORS[label])
        for t, kind in zip(times, kinds):
            if kind != 'nod':
                ax.annotate(kind, (t, y), fontsize=6)
    ax.set_yticks(range(len(speakers) + len(run.results)))
    ax.set_yticklabels([f'speaker {s}' for s in speakers]
                       + [f'{label} events' for label in run.results])
    ax.set_xlabel('bag time (s)')
    ax.set_title('backchannels (triangles) against speaker turns (green: listener turns)')
    fig.tight_layout()
    fig.savefig(out / 'events.png', dpi=100)
    plt.close(fig)


def write_prediction_bag(run: EvaluationRun, out: Path | str) -> Path:
    """Write an MCAP copy of the bag with the predictions added on ``/listener/head_pose``."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from listener_head_ros.bags.convert import (
        BAG_VERSION, head_pose_message, offered_qos, PREDICTION_TOPIC)
    from listener_head_ros.bags.typestore import HEAD_POSE, listener_typestore
    result = run.results.get('replay') or run.results['offline']
    store = listener_typestore()
    with AnyReader([run.contents.path], default_typestore=store) as reader, Writer(
            out, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        mapping = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store)
                   for c in reader.connections}
        for connection, ns, raw in reader.messages():
            writer.write(mapping[connection.id], ns, raw)
        predicted = writer.add_connection(PREDICTION_TOPIC, HEAD_POSE, typestore=store,
                                          offered_qos_profiles=offered_qos())
        for t, pose in zip(result.trace.times, result.trace.poses):
            ns = int(round(t * 1e9))
            message = head_pose_message(store, ns, pose)
            writer.write(predicted, ns, store.serialize_cdr(message, HEAD_POSE))
    return Path(out)


def main(argv: Optional[List[str]] = None, replayer: Optional[Replayer] = None) -> int:
    """Evaluate a model on a bag from the command line; return a process exit code."""
    parser = argparse.ArgumentParser(
        description='Evaluate a listener model on a bag: offline, by replay through the real '
                    'listener node, or both; write a report directory.')
    parser.add_argument('bag', type=Path, help='a rosbag2 directory (MCAP or sqlite3)')
    parser.add_argument('--model', default='prosodic',
                        help="'prosodic' (embedded default) or a checkpoint directory")
    parser.add_argument('--mode', choices=MODES, default='both')
    parser.add_argument('--out', type=Path, required=True, help='report directory')
    parser.add_argument('--rate', type=float, default=1.0, help='replay speed, x real time')
    parser.add_argument('--loops', type=int, default=1,
                        help='replay passes; the clock jumps back between them')
    parser.add_argument('--lockstep', action='store_true',
                        help='replay: wait for the node before each tick instead of letting '
                             'it drop frames when it falls behind')
    parser.add_argument('--params-file', type=Path, default=None,
                        help='the listener parameter file (default config/listener.yaml)')
    parser.add_argument('--mcap-out', type=Path, default=None,
                        help='also write an MCAP copy of the bag with the predictions on '
                             '/listener/head_pose (for Foxglove)')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        run = evaluate_bag(args.bag, args.model, args.mode, args.params_file, args.rate,
                           args.loops, args.lockstep, replayer=replayer)
        out = write_report(run, args.out)
        if args.mcap_out is not None:
            print(f'predictions bag: {write_prediction_bag(run, args.mcap_out)}')
    except (BagError, ValueError, FileNotFoundError) as error:
        print(f'evaluate: {error}', file=sys.stderr)
        return 2
    except RuntimeError as error:  # ReplayError, CheckpointError
        print(f'evaluate: {type(error).__name__}: {error}', file=sys.stderr)
        return 2
    for name, result in run.results.items():
        head = result.head
        print(f'{name}: MAE mean {_fmt(head.mae_mean_deg if head else None)} deg, '
              f'dropped frames {result.trace.frames_dropped}, '
              f'{_fmt(result.real_time_factor, 1)} x real time')
    print(f'report: {out} ({time.perf_counter() - start:.1f} s)')
    return 0
