#!/usr/bin/env bash
# Installs a real Matrix homeserver (Synapse from PyPI) for tests/test_matrix_synapse.py into its
# own venv, tests/matrix/.venv: Synapse pins versions of libraries (Twisted, attrs, jsonschema)
# that must not leak into statusd's venv. Idempotent: a stamp holds the wanted version, and
# nothing runs again while Synapse imports and the stamp matches.
set -euo pipefail
cd "$(dirname "$0")"

want="matrix-synapse==1.163.2"
venv=.venv
stamp=$venv/.statusd-installed

installed() {
    # The stamp is written only after Synapse imported once; here a light import suffices.
    [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/python ]] &&
        "$venv/bin/python" -c 'import synapse' 2>/dev/null
}

if installed; then
    exit 0
fi
started=$SECONDS
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "$want"
"$venv/bin/python" -c 'import synapse.app.homeserver'
echo "$want" > "$stamp"
echo "tests/matrix/install.sh: Synapse installed in $((SECONDS - started)) s"
