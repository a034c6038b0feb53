"""
Start the active listener and the head driver.

    ros2 launch listener_head_ros listener.launch.py \
        audio_topic:=/audio/audio robot_profile:=tiago namespace:=robot

Lifecycle: the listener is a lifecycle node that owns its own transitions. With
``autostart:=true`` (the default) it configures and then activates itself as soon as it starts,
the same way under ``ros2 launch`` and ``ros2 run``; this file sends it no transition. A failed
configure (``model:=/missing/checkpoint``) is logged and leaves it running, unconfigured: correct
the parameter (``ros2 param set /listener model ...``), then ``ros2 lifecycle set /listener
configure`` and ``activate``. With ``autostart:=false`` it starts unconfigured and waits for
whoever is to drive it: a lifecycle manager, ``ros2 lifecycle set``, or a launch file that
includes this one and emits ``ChangeState`` events for the ``LifecycleNode`` named ``listener``.
Never combine ``autostart:=true`` with another driver: both would send the same transitions.

The same graph runs without ``ros2 launch`` through ``ros2 run listener_head_ros listener_graph``
(or the ``listener_head_ros.ros.graph`` module), from the same YAML files.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description() -> LaunchDescription:
    """Build the launch description: arguments, listener (lifecycle) and head driver."""
    share = get_package_share_directory('listener_head_ros')
    namespace = LaunchConfiguration('namespace')
    use_sim_time = LaunchConfiguration('use_sim_time')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for both nodes and their topics.'),
        DeclareLaunchArgument('audio_topic', default_value='/audio/audio',
                              description='Audio input topic: audio_common_msgs/AudioData '
                                          '(ros-drivers) or AudioStamped (mgonzs13).'),
        DeclareLaunchArgument('audio_info_topic', default_value='/audio/audio_info',
                              description='audio_common_msgs/AudioInfo input topic '
                                          '(ros-drivers; unused with mgonzs13).'),
        DeclareLaunchArgument('robot_profile', default_value='generic_3dof',
                              description='Head profile: a name under config/robots/ or a path.'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'listener.yaml'),
                              description='Parameter file for both nodes.'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (bag replay).'),
        DeclareLaunchArgument('model', default_value='prosodic',
                              description="'prosodic' or a trained checkpoint directory."),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto, cpu or cuda (falls back to the CPU).'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='true: the listener configures and activates itself; '
                                          'false: it waits, unconfigured, for a lifecycle '
                                          'manager or ros2 lifecycle set.'),
    ]
    listener = LifecycleNode(
        package='listener_head_ros', executable='listener_node', name='listener',
        namespace=namespace, output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'use_sim_time': use_sim_time, 'model': LaunchConfiguration('model'),
                     'device': LaunchConfiguration('device'),
                     'autostart': LaunchConfiguration('autostart')}],
        remappings=[('audio', LaunchConfiguration('audio_topic')),
                    ('audio_info', LaunchConfiguration('audio_info_topic'))],
    )
    driver = Node(
        package='listener_head_ros', executable='head_driver_node', name='head_driver',
        namespace=namespace, output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'use_sim_time': use_sim_time,
                     'robot_profile': LaunchConfiguration('robot_profile')}],
    )
    return LaunchDescription(arguments + [listener, driver])
