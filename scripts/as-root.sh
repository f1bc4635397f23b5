# Sourced first by the scripts that need root (they install packages and boot the stand-in): as root they go on,
# as another user they start again under sudo; without sudo they say how to run them.
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "error: $0 needs root and this machine has no sudo: run it as root" >&2
    exit 1
  fi
  # sudo resets the environment: the stand-ins' releases (the settings these scripts take from it) go along
  exec sudo -- env ${QMS_STANDIN_RELEASE:+QMS_STANDIN_RELEASE="$QMS_STANDIN_RELEASE"} \
    ${QMS_SECOND_RELEASE:+QMS_SECOND_RELEASE="$QMS_SECOND_RELEASE"} "$0" "$@"
fi
