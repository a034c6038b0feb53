# Source this file (bash) to use the environment made by scripts/setup_env.sh:
# the venv (at $LISTENER_HEAD_ROS_VENV, default ~/.cache/listener_head_ros/venv), the ROS 2 prefix inside it, the test-only interface underlay and this package.
_lhr_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "${LISTENER_HEAD_ROS_VENV:-$HOME/.cache/listener_head_ros/venv}/bin/activate"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# shellcheck disable=SC1091
source "$_lhr_root/build/test_underlay/local_setup.bash"
# shellcheck disable=SC1091
source "$_lhr_root/install/local_setup.bash"
unset _lhr_root
