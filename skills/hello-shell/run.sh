#!/usr/bin/env bash
# Arguments arrive as JSON on stdin (and in OPENPISTA_SKILL_ARGS); stdout is the result.
set -euo pipefail
args=$(cat)
name=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("name","world"))' "$args")
echo "Hello, ${name}!"
