#!/usr/bin/env bash
# System packages for the `hw` extra (unitree_sdk2py's DDS layer): Debian's Cyclone DDS 0.10.2, the version the G1
# runs. The Python binding's build expects $CYCLONEDDS_HOME/{include,lib,bin}; Debian splits them across /usr, so
# /opt/cyclonedds holds links. Use it as: CYCLONEDDS_HOME=/opt/cyclonedds pip install -e '.[hw]'.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! ls /usr/lib/*/libddsc.so >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cyclonedds-dev >/dev/null
fi
$SUDO mkdir -p /opt/cyclonedds
$SUDO ln -sfn /usr/include /opt/cyclonedds/include
$SUDO ln -sfn /usr/bin /opt/cyclonedds/bin
$SUDO ln -sfn "$(dirname "$(ls /usr/lib/*/libddsc.so | head -1)")" /opt/cyclonedds/lib
