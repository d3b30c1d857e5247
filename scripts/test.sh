#!/usr/bin/env bash
# The whole test suite, from a clean clone: dependencies, build, typecheck, lint, unit tests,
# then e2e tests against the real daemon, registry and OCI runtime. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then echo "skiff tests need root (namespaces, mounts, cgroups)" >&2; exit 1; fi
bash scripts/deps.sh
echo "== lint" >&2
npx eslint --max-warnings=0 .
echo "== unit tests" >&2
node --test --test-concurrency=2 $(find dist -name '*.test.js' -not -path 'dist/e2e/*' | sort) $(find dist/e2e/harness -name '*.test.js' | sort)
echo "== e2e tests" >&2
node --test --test-concurrency=1 $(find dist/e2e -maxdepth 1 -name '*.e2e.js' | sort)
