#!/usr/bin/env bash
# Installs (or refreshes) the Confluent REST proxy on the EC2 client; safe to run again.
# Rendered by aws_deploy: the two files travel inside this script, base64-encoded.
set -euo pipefail

if [ ! -x "${CONFLUENT_HOME}/bin/kafka-rest-start" ]; then
  echo "Confluent Platform not found at ${CONFLUENT_HOME}: download and extract confluent-7.2.0 first" >&2
  exit 1
fi
if [ ! -f "${IAM_AUTH_JAR}" ]; then
  curl -fsSL -o "${IAM_AUTH_JAR}" "${IAM_AUTH_JAR_URL}"
fi
install -d -m 0755 "$(dirname "${PROPERTIES_PATH}")"
echo "${PROPERTIES_B64}" | base64 -d > "${PROPERTIES_PATH}"
echo "${UNIT_B64}" | base64 -d > /etc/systemd/system/kafka-rest.service
systemctl daemon-reload
systemctl enable kafka-rest.service
systemctl restart kafka-rest.service
systemctl is-active kafka-rest.service
