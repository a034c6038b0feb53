"""
Start the active listener and the head driver.

    ros2 launch listener_head_ros listener.launch.py \
        audio_topic:=/audio/audio robot_profile:=tiago namespace:=robot

The listener is a lifecycle node; this file configures and then activates it. The same graph
runs without `ros2 launch` through `ros2 run listener_head_ros listener_graph` (or the
`listener_head_ros.ros.graph` module), from the same YAML files.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    """Build the launch description: arguments, listener (lifecycle) and head driver."""
    share = get_package_share_directory('listener_head_ros')
    namespace = LaunchConfiguration('namespace')
    use_sim_time = LaunchConfiguration('use_sim_time')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for both nodes and their topics.'),
        DeclareLaunchArgument('audio_topic', default_value='/audio/audio',
                              description='audio_common_msgs/AudioData input topic.'),
        DeclareLaunchArgument('audio_info_topic', default_value='/audio/audio_info',
                              description='audio_common_msgs/AudioInfo input topic.'),
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
    ]
    listener = LifecycleNode(
        package='listener_head_ros', executable='listener_node', name='listener',
        namespace=namespace, output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'use_sim_time': use_sim_time, 'model': LaunchConfiguration('model'),
                     'device': LaunchConfiguration('device')}],
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
    configure = EmitEvent(event=ChangeState(
        lifecycle_node_matcher=matches_action(listener),
        transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=listener, goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(listener),
            transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription(
        arguments + [activate_when_configured, listener, driver, configure])
