#!/usr/bin/env bash
# The image's entrypoint. `model-steps ...` runs the plugin's command line as it is; anything
# else goes to the Airflow image's own entrypoint, which waits for the metadata DB and turns
# `scheduler` into `airflow scheduler` (and would turn `model-steps validate` into the
# nonexistent `airflow model-steps validate`). AIRFLOW_IMAGE_ENTRYPOINT exists for the test
# that runs docker/compose.yaml without Docker, where the image's /entrypoint is not.
set -euo pipefail
if [[ "${1:-}" == "model-steps" ]]; then
    exec "$@"
fi
exec "${AIRFLOW_IMAGE_ENTRYPOINT:-/entrypoint}" "$@"
