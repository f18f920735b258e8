#!/bin/sh
# Validates deploy/ and docker-compose.yml (tests/deploy/validate.mjs), then
# proves the validation is live (--self-test: broken copies must be rejected).
# Needs node >= 18 and npm (Debian 12: apt-get install nodejs npm) and, for
# the PromQL checks, promtool (Debian: prometheus). Installs the pinned npm
# packages from package-lock.json only when node_modules is missing or was
# installed from another lock file.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.wabot-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	echo "deploy-validate: npm ci"
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
	echo "$want" >"$stamp"
fi
node validate.mjs
node validate.mjs --self-test
