"""
Live end-to-end demo: bundled speech -> AudioData over DDS -> listener -> head driver -> plot.

Starts the same node graph as ``listener.launch.py`` in a process of its own
(:mod:`listener_head_ros.ros.graph`, as on a robot), publishes the bundled speech recording
from this process as a microphone driver would, at real time, then lets the robot answer once:
``robot_speaking`` goes true and the end of the recording plays on ``robot_audio``, as a TTS
node would publish it, so the head shows both behaviours, listening and speaking. It prints a
live summary every second from what arrives over DDS (poses, nods, the listener's
/diagnostics) and writes a plot of what the head did. ``make demo`` runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
import soundfile
from std_msgs.msg import Bool

from listener_head_ros.msg import Backchannel, HeadPose
from listener_head_ros.ros.audio_file_publisher import AudioFilePublisher
from rclpy.executors import SingleThreadedExecutor

BUNDLED_SPEECH = Path(__file__).resolve().parents[1] / 'data' / 'speech_en.wav'


class ListenerRecorder(Node):
    """Record what the listener graph publishes, stamped with arrival time."""

    def __init__(self, **kwargs) -> None:
        super().__init__('listener_recorder', **kwargs)
        self.start = time.monotonic()
        self.poses: List[tuple] = []
        self.joints: List[tuple] = []
        self.joint_names: List[str] = []
        self.events: List[tuple] = []
        self.diagnostics = {}
        self.create_subscription(HeadPose, 'head_pose', self._on_pose, 50)
        self.create_subscription(Backchannel, 'backchannel', self._on_backchannel, 50)
        self.create_subscription(JointState, 'joint_states', self._on_joints, 50)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def now(self) -> float:
        """Return seconds since the recorder started."""
        return time.monotonic() - self.start

    def _on_pose(self, msg: HeadPose) -> None:
        self.poses.append((self.now(), msg.roll, msg.pitch, msg.yaw))

    def _on_backchannel(self, msg: Backchannel) -> None:
        self.events.append((self.now(), msg.type, msg.intensity))

    def _on_joints(self, msg: JointState) -> None:
        self.joint_names = list(msg.name)
        self.joints.append((self.now(), *msg.position))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(': listener'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}


def plot_demo(recorder: ListenerRecorder, audio: np.ndarray, sample_rate: int,
              audio_start: float, output: Path,
              answer: Optional[Tuple[float, float]] = None) -> Path:
    """Plot speech, head angles with backchannel events, and joint positions."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    t_audio = audio_start + np.arange(audio.shape[0]) / sample_rate
    axes[0].plot(t_audio, audio.mean(axis=1), lw=0.4, color='0.4')
    axes[0].set_ylabel('speech')
    axes[0].set_title('listener_head_ros demo: embedded prosodic listener and speaking motion, '
                      'live over DDS')
    if answer is not None:
        for axis in axes:
            axis.axvspan(*answer, color='tab:blue', alpha=0.08)
        axes[0].text(answer[0], axes[0].get_ylim()[1] * 0.8, ' the robot answers',
                     color='tab:blue')
    poses = np.array(recorder.poses)
    if poses.size:
        for column, name in ((1, 'roll'), (2, 'pitch (+ down)'), (3, 'yaw')):
            axes[1].plot(poses[:, 0], np.degrees(poses[:, column]), label=name)
    for t, kind, _ in recorder.events:
        for axis in axes[:2]:
            axis.axvline(t, color='tab:red' if kind == 'nod' else 'tab:green', alpha=0.4)
    axes[1].set_ylabel('head_pose (deg)')
    axes[1].legend(loc='upper right', title='red: nod, green: smile', fontsize=8)
    joints = np.array(recorder.joints)
    if joints.size:
        for i, name in enumerate(recorder.joint_names):
            axes[2].plot(joints[:, 0], np.degrees(joints[:, i + 1]), label=name)
        axes[2].legend(loc='upper right', fontsize=8)
    axes[2].set_ylabel('joint command (deg)')
    axes[2].set_xlabel('time (s)')
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--audio', type=Path, default=BUNDLED_SPEECH)
    parser.add_argument('--robot-profile', default='generic_3dof')
    parser.add_argument('--output', type=Path, default=Path('demo_output/listener_demo.png'))
    parser.add_argument('--tail', type=float, default=2.5,
                        help='seconds to keep running after the speech ends')
    parser.add_argument('--answer', type=float, default=6.0,
                        help="seconds of the recording's end that the robot speaks as its "
                             'answer (0: no answer)')
    options = parser.parse_args(argv)
    recording, sample_rate = soundfile.read(options.audio, dtype='float32', always_2d=True)
    split = max(0, len(recording) - int(options.answer * sample_rate))
    audio, answer_audio = recording[:split], recording[split:]
    graph = subprocess.Popen([sys.executable, '-m', 'listener_head_ros.ros.graph',
                              '--robot-profile', options.robot_profile])
    rclpy.init()
    executor = SingleThreadedExecutor()
    recorder = ListenerRecorder()
    executor.add_node(recorder)
    nodes = [recorder]
    try:
        deadline = recorder.now() + 30.0
        while not recorder.joints and recorder.now() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if graph.poll() is not None:
                raise RuntimeError(f'the listener graph exited with code {graph.returncode}')
        if not recorder.joints:
            raise RuntimeError('the listener graph did not come up within 30 s')
        print(f'demo: listener graph is up; playing {options.audio.name} '
              f'({len(audio) / sample_rate:.1f} s) to /audio/audio at real time')
        microphone = AudioFilePublisher(audio, sample_rate, cli_args=[
            '--ros-args', '-r', 'audio:=/audio/audio', '-r', 'audio_info:=/audio/audio_info'])
        executor.add_node(microphone)
        nodes.append(microphone)
        speaking = recorder.create_publisher(Bool, 'robot_speaking', 10)
        audio_start, next_print = recorder.now(), recorder.now() + 1.0
        voice, answer, end = None, None, None
        while end is None or recorder.now() < end:
            executor.spin_once(timeout_sec=0.05)
            if microphone.finished and voice is None and answer_audio.size:
                print(f'demo: the robot answers ({len(answer_audio) / sample_rate:.1f} s on '
                      'robot_audio)', flush=True)
                speaking.publish(Bool(data=True))
                voice = AudioFilePublisher(answer_audio, sample_rate,
                                           node_name='robot_voice', cli_args=[
                                               '--ros-args', '-r', 'audio:=robot_audio',
                                               '-r', 'audio_info:=robot_audio_info'])
                executor.add_node(voice)
                nodes.append(voice)
                answer = (recorder.now(), None)
            spoken = voice.finished if voice is not None else not answer_audio.size
            if microphone.finished and spoken and end is None:
                if voice is not None:
                    speaking.publish(Bool(data=False))
                    answer = (answer[0], recorder.now())
                end = recorder.now() + options.tail
            if recorder.now() >= next_print:
                next_print += 1.0
                print(_summary(recorder), flush=True)
    except RuntimeError as error:
        print(f'demo: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        graph.send_signal(signal.SIGINT)
        graph.wait(timeout=10)
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    path = plot_demo(recorder, recording, sample_rate, audio_start, options.output,
                     answer if answer is not None and answer[1] is not None else None)
    nods = sum(1 for _, kind, _ in recorder.events if kind == 'nod')
    print(f'demo: {len(recorder.poses)} head poses, {nods} nods, '
          f'{len(recorder.joints)} joint commands; plot written to {path}')
    return 0 if recorder.poses else 1


def _summary(recorder: ListenerRecorder) -> str:
    if not recorder.poses:
        return f't={recorder.now():5.1f}s  waiting for head_pose ...'
    _, roll, pitch, yaw = recorder.poses[-1]
    recent = [p for p in recorder.poses if p[0] > recorder.now() - 1.0]
    nods = sum(1 for _, kind, _ in recorder.events if kind == 'nod')
    diagnostics = recorder.diagnostics
    return (f't={recorder.now():5.1f}s  pose rate {len(recent):3d} Hz  '
            f'roll {np.degrees(roll):+5.1f}  pitch {np.degrees(pitch):+5.1f}  '
            f'yaw {np.degrees(yaw):+5.1f} deg  nods {nods:2d}  '
            f'tick p99 {diagnostics.get("tick compute p99 (ms)", "?")} ms  '
            f'dropped {diagnostics.get("dropped frames", "?")}')


if __name__ == '__main__':
    sys.exit(main())
