#!/bin/bash
# `api-server`, `scheduler`, ... run as `airflow api-server`, ...; any other command runs as given.
# The simple auth manager's login comes from AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD (its
# passwords file is written from them), so the login is known instead of generated and printed.
set -euo pipefail
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ] && [ -n "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}" ]; then
  python3 -c 'import json, os, sys; json.dump({os.environ.get("AIRFLOW_ADMIN_USER", "admin"): os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1], "w"))' \
    "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
fi
if [ $# -gt 0 ] && ! command -v "$1" >/dev/null 2>&1; then
  set -- airflow "$@"
fi
exec "$@"
