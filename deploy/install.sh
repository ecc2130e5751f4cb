#!/usr/bin/env bash
# Install mailbot into a virtualenv from this bundle's wheels alone (no network): install.sh [VENV_DIR]
# PYTHON=/usr/bin/python3.11 picks the interpreter; it must be the version the bundle was built for.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${1:-/opt/mailbot/venv}
py=${PYTHON:-python3}

# The compiled wheels (psycopg-binary, python-calamine, PyYAML, ...) fit one Python version and
# machine: say so plainly rather than let pip answer "no matching distribution".
want_py=$(sed -n 's/^python=//p' "$here/BUILD-INFO")
want_machine=$(sed -n 's/^machine=//p' "$here/BUILD-INFO")
have_py=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || {
  echo "install.sh: cannot run $py; set PYTHON=/path/to/python$want_py" >&2; exit 1; }
if [ "$have_py" != "$want_py" ] || [ "$(uname -m)" != "$want_machine" ]; then
  echo "install.sh: this bundle is for Python $want_py on $want_machine; $py is Python $have_py on $(uname -m)." >&2
  echo "            Set PYTHON=/path/to/python$want_py, or build a bundle on a machine like this one." >&2
  exit 1
fi
"$py" -c 'import ensurepip' 2>/dev/null || {
  echo "install.sh: $py cannot make a virtualenv (Debian/Ubuntu: install the python3-venv package)" >&2; exit 1; }

# A bundle copied over USB or a file share: catch a truncated or damaged wheel before pip does.
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$here" && sha256sum --quiet --strict -c SHA256SUMS)
fi

"$py" -m venv "$venv"
# --no-index: nothing may come from a network; --upgrade: running a newer bundle's install.sh over
# an existing venv upgrades mailbot (and only the dependencies it needs to).
"$venv/bin/pip" install --disable-pip-version-check --no-index --find-links "$here/wheels" --upgrade mailbot
"$venv/bin/mailbot" --help >/dev/null
echo "installed: $venv/bin/mailbot ($("$venv/bin/pip" show mailbot 2>/dev/null | sed -n 's/^Version: //p'))"
