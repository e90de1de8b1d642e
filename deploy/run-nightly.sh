#!/bin/sh
# Start the stardag nightly benchmark job with the settings of an env file.
#
#   deploy/run-nightly.sh [ENV_FILE]
#
# ENV_FILE (cron passes it; systemd loads it with EnvironmentFile= instead)
# sets NIGHTLY_PYTHON, NIGHTLY_REPO, NIGHTLY_ARGS and optionally NIGHTLY_JOB;
# see nightly.env.example.
# The job takes its own lock, so overlapping starts are harmless.
set -eu
if [ $# -ge 1 ]; then
    set -a  # export what the file sets (XDG_STATE_HOME, ...) to the job
    # shellcheck disable=SC1090
    . "$1"
    set +a
fi
: "${NIGHTLY_REPO:?set NIGHTLY_REPO to the stardag checkout the job benchmarks}"
: "${NIGHTLY_PYTHON:=python3}"
# Word splitting of NIGHTLY_ARGS is wanted: it holds several options.
# shellcheck disable=SC2086
exec "$NIGHTLY_PYTHON" "${NIGHTLY_JOB:-$NIGHTLY_REPO/tools/nightly.py}" --repo "$NIGHTLY_REPO" ${NIGHTLY_ARGS:-}
