"""
The REACT evaluation report: ``metrics.json``, ``summary.md`` and plots, in one directory.

``metrics.json``
    every row's metric table (:func:`listener_head_ros.eval.react_eval.score_samples`: the
    ``challenge`` and ``corrected`` REACT suites and the ``paired`` valence/arousal figures)
    with the settings it was computed under.
``summary.md``
    the tables in Markdown: the predictions' rows against the reference rows.
``traces.png``
    predicted vs real traces (the paired listener's most varying AU, valence, arousal) of a
    few samples of a few clips.
``spread.png``
    the spread between samples (the standard deviation across samples, per frame, of valence
    and arousal) on the same clips.
``metrics.png``
    the metric table of every row (both modes and the paired figures) as a figure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from listener_head_ros.data.react2025 import FACIAL_FPS
from listener_head_ros.eval.react_eval import PAIRED_CHANNELS
from listener_head_ros.eval.react_metrics import MODES
from listener_head_ros.streams import FACIAL_ATTRIBUTES

PLOTS = ('traces.png', 'spread.png', 'metrics.png')
SUITE = ('FRC', 'FRD', 'FRDiv', 'FRVar', 'FRDvs', 'FRSyn')
PAIRED = tuple(f'{kind}_{name}' for name in PAIRED_CHANNELS for kind in ('MAE', 'CCC'))
EXAMPLE_CLIPS = 3
EXAMPLE_SAMPLES = 4
_AU_COUNT = 15  # the first 15 facial attributes are AU occurrences


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def table_markdown(rows: Dict[str, Dict[str, Any]]) -> str:
    """Return the Markdown tables (one per mode, then the paired figures) of metric rows."""
    lines: List[str] = []
    for mode in MODES:
        lines += [f'### `{mode}` mode', '', '| row | ' + ' | '.join(SUITE) + ' |',
                  '|---|' + '---|' * len(SUITE)]
        lines += [f'| {name} | ' + ' | '.join(_fmt(row[mode][k]) for k in SUITE) + ' |'
                  for name, row in rows.items()]
        lines.append('')
    lines += ['### Against the paired listener', '', '| row | ' + ' | '.join(PAIRED) + ' |',
              '|---|' + '---|' * len(PAIRED)]
    lines += [f'| {name} | ' + ' | '.join(_fmt(row['paired'][k]) for k in PAIRED) + ' |'
              for name, row in rows.items()]
    return '\n'.join(lines) + '\n'


def summary_markdown(metrics: Dict[str, Any]) -> str:
    """Return ``summary.md`` for the contents of ``metrics.json``."""
    settings = metrics['settings']
    lines = [f'# REACT evaluation on the `{metrics["split"]}` split', '',
             f'{metrics["n_inputs"]} clips, {metrics["samples"]} samples per clip, '
             f'appropriate sets of up to {settings["appropriate_size"]} listeners (seed '
             f'{settings["appropriate_seed"]}), DTW band '
             f'{_fmt(settings["dtw_band_seconds"])} s, {FACIAL_FPS:g} fps. `challenge` follows '
             'the reference code (FRC and FRD summed over samples, FRSyn on sample 0 at 25 fps); '
             '`corrected` fixes its quirks (docs/metrics.md, section 2.1).', '',
             table_markdown(metrics['rows']), '## Rows', '']
    lines += [f'- **{name}**: {note}' for name, note in metrics['row_notes'].items()]
    lines += [f'- {note}' for note in metrics['notes']]
    lines += ['', 'Plots: ' + ', '.join(f'[{p}]({p})' for p in PLOTS), '']
    return '\n'.join(lines)


def _json_ready(value: Any) -> Any:
    """Return ``value`` with NaN and infinities as None (JSON null), recursively."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_react_report(out_dir: Path | str, metrics: Dict[str, Any],
                       examples: Dict[str, Sequence[np.ndarray]],
                       real: Sequence[np.ndarray], names: Sequence[str]) -> Path:
    """
    Write ``metrics.json``, ``summary.md`` and the plots into ``out_dir``; return it.

    ``examples[row]`` holds a row's ``(S, T_n, 25)`` samples for the example clips (the first
    row's are drawn in ``traces.png``, every row's spread in ``spread.png``), ``real`` their
    paired listeners ``(T_n, 25)`` and ``names`` their keys.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'metrics.json').write_text(json.dumps(_json_ready(metrics), indent=2) + '\n')
    (out / 'summary.md').write_text(summary_markdown(metrics))
    plot_report(out, metrics['rows'], examples, real, names)
    return out


def plot_report(out: Path, rows: Dict[str, Dict[str, Any]],
                examples: Dict[str, Sequence[np.ndarray]], real: Sequence[np.ndarray],
                names: Sequence[str]) -> None:
    """Write the three PNG plots of the report."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    clips = min(EXAMPLE_CLIPS, len(real))
    first = next(iter(examples))

    fig, axes = plt.subplots(clips, 3, figsize=(13, 2.6 * clips), squeeze=False)
    for c in range(clips):
        truth = real[c]
        au = int(np.argmax(truth[:, :_AU_COUNT].var(axis=0)))
        channels = [(au, FACIAL_ATTRIBUTES.channels[au])] + [
            (i, n) for n, i in PAIRED_CHANNELS.items()]
        time = np.arange(truth.shape[0]) / FACIAL_FPS
        for ax, (channel, label) in zip(axes[c], channels):
            samples = examples[first][c]
            for s in range(min(EXAMPLE_SAMPLES, samples.shape[0])):
                ax.plot(time, samples[s, :time.size, channel], lw=0.8, alpha=0.8,
                        color=colors[s % len(colors)], label=f'{first} sample {s}')
            ax.plot(time, truth[:, channel], color='black', lw=1.2, label='real listener')
            ax.set_title(f'{names[c]}: {label}', fontsize=9)
        axes[c][0].set_ylabel('value')
    axes[0][0].legend(fontsize=7, loc='upper right')
    for ax in axes[-1]:
        ax.set_xlabel('time (s)')
    fig.tight_layout()
    fig.savefig(out / 'traces.png', dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(clips, len(PAIRED_CHANNELS), figsize=(11, 2.4 * clips),
                             squeeze=False)
    for c in range(clips):
        time = np.arange(real[c].shape[0]) / FACIAL_FPS
        for ax, (label, channel) in zip(axes[c], PAIRED_CHANNELS.items()):
            for k, (row, samples) in enumerate(examples.items()):
                spread = samples[c][:, :time.size, channel].std(axis=0)
                ax.plot(time, spread, lw=1.0, color=colors[k % len(colors)], label=row)
            ax.set_title(f'{names[c]}: {label}, std across samples', fontsize=9)
    axes[0][0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel('time (s)')
    fig.tight_layout()
    fig.savefig(out / 'spread.png', dpi=90)
    plt.close(fig)

    columns = [(mode, k) for mode in MODES for k in SUITE] + [('paired', k) for k in PAIRED]
    labels = [f'{k}\n({section})' for section, k in columns]
    cells = [[_fmt(row[section][k]) for section, k in columns] for row in rows.values()]
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * len(columns), 0.9 + 0.32 * len(rows)))
    ax.set_axis_off()
    table = ax.table(cellText=cells, rowLabels=list(rows), colLabels=labels, loc='center',
                     cellLoc='center')
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1.0, 1.5)
    ax.set_title('metrics of the predictions against the reference rows', fontsize=9)
    fig.savefig(out / 'metrics.png', dpi=90, bbox_inches='tight')
    plt.close(fig)
