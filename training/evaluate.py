r"""
Evaluate a listener model on a bag, offline and/or by replay through the real node.

Example::

    python training/evaluate.py /tmp/bags/Ses01F_impro01 --model prosodic --mode both \
        --out /tmp/report --rate 2

See :mod:`listener_head_ros.eval.report` for the report's contents. ROS (rclpy) is imported
only for ``--mode replay`` or ``both``, so ``--mode offline`` runs on a machine without ROS.
"""

from pathlib import Path
import sys
from typing import Callable, Optional

from listener_head_ros.eval.report import main


def replay(contents, model: str, params_file: Optional[Path], rate: float, loops: int,
           lockstep: bool, progress: Optional[Callable[[float], None]] = None):
    """Replay through the listener node (imports rclpy on first use)."""
    from listener_head_ros.ros.bag_replay import replay_for_report
    return replay_for_report(contents, model, params_file, rate, loops, lockstep, progress)


if __name__ == '__main__':
    sys.exit(main(replayer=replay))
