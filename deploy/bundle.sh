#!/usr/bin/env bash
# Build the offline install bundle: bash deploy/bundle.sh [OUTDIR]   (default OUTDIR: dist/)
#
# Writes OUTDIR/mailbot-offline-<version>.tar.gz holding mailbot's wheel and a wheel of every
# dependency for THIS machine's Python and platform, install.sh, the systemd unit, the rules,
# the example config and a README. PYTHON=/path/to/python3.11 builds for another interpreter
# (default: the project's .venv, else python3). Needs PyPI (or pip's usual PIP_INDEX_URL /
# PIP_FIND_LINKS / PIP_NO_INDEX settings pointing at a mirror or a wheelhouse).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
outdir=${1:-$root/dist}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x "$root/.venv/bin/python" ]; then py=$root/.venv/bin/python
else py=python3
fi

work=$(mktemp -d)
archive=
trap 'rm -rf "$work"; if [ -n "$archive" ]; then rm -f "$archive.part"; fi' EXIT

# Build from a copy of what the wheel needs, so pip/setuptools never write build/ or *.egg-info
# into the working tree (someone may be editing it while the bundle builds).
mkdir "$work/src"
for f in pyproject.toml setup.py setup.cfg MANIFEST.in README.md LICENSE LICENSE.txt; do
  if [ -e "$root/$f" ]; then cp "$root/$f" "$work/src/"; fi
done
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' -cf - mailbot | tar -C "$work/src" -xf -

# One pip run resolves mailbot's dependencies (no test extras) and leaves a wheel of each,
# building any that PyPI has only as source for this Python; pip's cache makes re-runs cheap.
"$py" -m pip wheel --disable-pip-version-check --quiet --wheel-dir "$work/wheels" "$work/src"

wheel=$(cd "$work/wheels" && ls mailbot-*.whl)
version=$(echo "$wheel" | cut -d- -f2)
name=mailbot-offline-$version
stage=$work/$name
mkdir "$stage"
mv "$work/wheels" "$stage/wheels"
cp "$root/deploy/install.sh" "$stage/install.sh"
chmod 0755 "$stage/install.sh"
cp "$root/deploy/mailbot.service" "$stage/mailbot.service"
cp "$root/deploy/README.offline.md" "$stage/README.md"
cp "$root/config.example.yaml" "$stage/config.example.yaml"
# The rules are not inside the wheel (a deployment edits its calendar and templates): ship them beside it.
tar -C "$root" --exclude=__pycache__ -cf - rules | tar -C "$stage" -xf -

# What install.sh checks before it starts, and what an administrator reads to know where it fits.
"$py" - "$stage" <<'PY'
import platform, re, sys
from pathlib import Path
stage = Path(sys.argv[1])
wheels = sorted(p.name for p in (stage / "wheels").glob("*.whl"))
# A wheel tagged for several glibc versions runs on the oldest of them; the bundle needs the newest such minimum.
glibc = [min(tuple(map(int, m)) for m in tags) for w in wheels if (tags := re.findall(r"manylinux_(\d+)_(\d+)", w))]
lines = [f"python={sys.version_info[0]}.{sys.version_info[1]}", f"machine={platform.machine()}",
         f"built_with={platform.python_implementation()} {platform.python_version()} on {platform.platform()}",
         "glibc_needed=" + ("%d.%d" % max(glibc) if glibc else "any"), ""] + wheels
(stage / "BUILD-INFO").write_text("\n".join(lines) + "\n")
PY
(cd "$stage" && sha256sum wheels/*.whl > SHA256SUMS)

archive=$outdir/$name.tar.gz
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner -czf "$archive.part" "$name"
mv -f "$archive.part" "$archive"
size=$(stat -c %s "$archive")
echo "$archive"
wheels=("$stage"/wheels/*.whl)
echo "size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB), ${#wheels[@]} wheels," \
     "python $("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])') $(uname -m)"
