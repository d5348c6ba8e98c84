#!/usr/bin/env bash
# Rewrites the key table of docs/configuration.md from `driftwatch run --config-reference` (the
# declarative key table in src/io/dw_config_load.c is the one source; tests/unit/test_config.c fails
# when the two differ). Usage: scripts/gen-config-doc.sh [path/to/driftwatch]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/driftwatch}
python3 - "$bin" <<'PY'
import subprocess, sys
ref = subprocess.run([sys.argv[1], "run", "--config-reference"], check=True,
                     capture_output=True, text=True).stdout
path = "docs/configuration.md"
lines = open(path).read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("| key | type | default |"))
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
new = lines[:start] + ref.rstrip("\n").split("\n") + lines[end:]
open(path, "w").write("\n".join(new))
PY
