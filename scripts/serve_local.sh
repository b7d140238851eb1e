#!/usr/bin/env bash
# Runs inside `python -m huleedu_devstack run`: maps the local stack's addresses to the
# service's settings, applies migrations, creates the topics and serves the Class
# Management Service.
set -euo pipefail

export CLASS_MANAGEMENT_SERVICE_DATABASE_URL="${HULEEDU_DEVSTACK_POSTGRES_URL:?run me through huleedu_devstack}"
export CLASS_MANAGEMENT_SERVICE_REDIS_URL="${HULEEDU_DEVSTACK_REDIS_URL:?}"
export CLASS_MANAGEMENT_SERVICE_KAFKA_BOOTSTRAP_SERVERS="${HULEEDU_DEVSTACK_KAFKA_BOOTSTRAP:?}"
# The local broker (tansu) does not support idempotent producers.
export CLASS_MANAGEMENT_SERVICE_KAFKA_ENABLE_IDEMPOTENCE="${CLASS_MANAGEMENT_SERVICE_KAFKA_ENABLE_IDEMPOTENCE:-false}"
export CLASS_MANAGEMENT_SERVICE_HOST="${CLASS_MANAGEMENT_SERVICE_HOST:-127.0.0.1}"
export CLASS_MANAGEMENT_SERVICE_PORT="${CLASS_MANAGEMENT_SERVICE_PORT:-5002}"
# Local development trusts X-User-ID (no gateway here); jwt mode is the service's default.
export CLASS_MANAGEMENT_SERVICE_AUTH_MODE="${CLASS_MANAGEMENT_SERVICE_AUTH_MODE:-trusted-header}"

python -m services.class_management_service migrate
# Before serving: a consumer subscribed by pattern sees every topic at once, instead of
# waiting for its next metadata refresh after the first event creates one.
python -m services.class_management_service create-topics
echo "Class Management Service on http://${CLASS_MANAGEMENT_SERVICE_HOST}:${CLASS_MANAGEMENT_SERVICE_PORT} (Ctrl-C stops it and the stack)"
if [ "$CLASS_MANAGEMENT_SERVICE_AUTH_MODE" = trusted-header ]; then
  echo "Auth mode: trusted-header (the caller is X-User-ID). To require tokens instead:"
  echo "  export CLASS_MANAGEMENT_SERVICE_JWT_SECRET_KEY=\$(openssl rand -hex 32); CLASS_MANAGEMENT_SERVICE_AUTH_MODE=jwt make run"
else
  echo "Auth mode: ${CLASS_MANAGEMENT_SERVICE_AUTH_MODE} (Authorization: Bearer \$(python -m services.class_management_service token --user teacher-1))"
fi
# exec: the service is the process the terminal's Ctrl-C and the devstack's signals reach.
exec python -m services.class_management_service serve
