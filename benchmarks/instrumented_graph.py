"""
Run the listener graph exactly as ``python -m listener_head_ros.ros.graph`` does, plus a tick log.

Started by ``bench_listener.py`` in a process of its own. The nodes, parameters, executors and
threads are those of :mod:`listener_head_ros.ros.graph`; the only addition is a wrapper around
the listener's ``head_pose`` publisher that, on each tick, appends to in-memory lists the pose's
header stamp, the engine's cumulative hop counters (stepped and dropped) and the tick's compute
and CPU time (read from the node's own ``tick_seconds``). The cost is a few list appends per
tick. On SIGINT the graph shuts down and the log is written as ``.npz`` to ``--log``, together
with the audio input's final counters, for the benchmark to match poses to the audio they
reflect.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Dict, List, Optional

import numpy as np
import rclpy

from listener_head_ros.ros.graph import GraphOptions, run_graph
from listener_head_ros.settings import default_params_file
from listener_head_ros.ros.listener_node import ListenerNode


class TickLog:
    """Per-tick record of what the listener published, filled from its tick thread."""

    def __init__(self, node: ListenerNode) -> None:
        self.node = node
        self.columns: Dict[str, List] = {
            'stamp_ns': [], 'stepped_total': [], 'dropped_total': [], 'compute_s': [],
            'cpu_s': []}
        publisher = node._outputs['pose']
        self._publish = publisher.publish
        publisher.publish = self._record_and_publish

    def _record_and_publish(self, msg) -> None:
        node, engine = self.node, self.node.engine
        self.columns['stamp_ns'].append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        self.columns['stepped_total'].append(engine.frames_stepped)
        self.columns['dropped_total'].append(engine.frames_dropped)
        self.columns['compute_s'].append(node.tick_seconds[-1] if node.tick_seconds else np.nan)
        self.columns['cpu_s'].append(
            node.tick_cpu_seconds[-1] if node.tick_cpu_seconds else np.nan)
        self._publish(msg)

    def save(self, path: Path) -> None:
        """Write the per-tick columns and the node's final counters to ``path`` (.npz)."""
        n = min(len(v) for v in self.columns.values())  # a tick may be mid-record
        arrays = {k: np.asarray(v[:n]) for k, v in self.columns.items()}
        stats = self.node.audio_input.stats if self.node.audio_input else None
        buffer = self.node.audio_input.buffer if self.node.audio_input else None
        arrays.update(
            hop_length=self.node.engine.model.hop_length if self.node.engine else 0,
            sample_rate=self.node.engine.model.sample_rate if self.node.engine else 0,
            messages=stats.messages if stats else -1,
            input_frames=stats.input_frames if stats else -1,
            output_samples=stats.output_samples if stats else -1,
            overflow_samples=buffer.overflowed_samples if buffer else -1)
        np.savez(path, **arrays)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the instrumented graph until SIGINT, then write the tick log; return an exit code."""
    args = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--log', type=Path, required=True, help='.npz file to write at exit')
    parser.add_argument('--params-file', type=Path, default=default_params_file())
    parser.add_argument('--model', default=None, help="'prosodic' or a checkpoint directory")
    options = parser.parse_args(rclpy.utilities.remove_ros_args(args)[1:])
    logs: List[TickLog] = []
    return run_graph(GraphOptions(options.params_file, model=options.model), args,
                     'instrumented_graph',
                     on_started=lambda runner: logs.append(TickLog(runner.listener)),
                     on_stopping=lambda runner: logs[0].save(options.log))


if __name__ == '__main__':
    sys.exit(main())
