"""The offline bundle: deploy/bundle.sh builds it, and it installs into a fresh venv with no network."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import need

ROOT = Path(__file__).resolve().parent.parent
# Wheels of the last successful build, so the test still runs where the index is unreachable.
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mailbot-test-wheelhouse"
NETWORK_ERRORS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                  "Network is unreachable", "ConnectTimeout", "ReadTimeout", "Max retries exceeded",
                  "No matching distribution found", "Could not find a version that satisfies")


def _bundle(outdir: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    # Fail fast on a dead network (the machine's pip default waits minutes per request).
    env = {**os.environ, "PYTHON": sys.executable, "PIP_DEFAULT_TIMEOUT": "20", "PIP_RETRIES": "1", **extra_env}
    return subprocess.run(["bash", str(ROOT / "deploy" / "bundle.sh"), str(outdir)], cwd="/",
                          env=env, capture_output=True, text=True, timeout=900)


def _build(outdir: Path) -> tuple[Path, str]:
    run, source = _bundle(outdir, {}), "the package index"
    if run.returncode != 0 and any(m in run.stderr for m in NETWORK_ERRORS):
        if not any(WHEELHOUSE.glob("setuptools-*.whl")):
            need("cannot build the bundle's wheels: the package index is unreachable and no wheelhouse "
                        f"from an earlier run is at {WHEELHOUSE}: {run.stderr.strip().splitlines()[-1]}")
        run, source = _bundle(outdir, {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}), f"the wheelhouse {WHEELHOUSE}"
    assert run.returncode == 0, f"bundle.sh failed:\n{run.stdout}\n{run.stderr}"
    archive = Path(run.stdout.strip().splitlines()[-2])
    assert archive.parent == outdir and archive.name.startswith("mailbot-offline-") and archive.is_file()
    assert "size:" in run.stdout.splitlines()[-1]
    return archive, source


def _keep_wheels(unpacked: Path) -> None:
    """Copy the bundle's wheels, and the build backend mailbot's own wheel needs, to the wheelhouse."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for whl in (unpacked / "wheels").glob("*.whl"):
        if not (WHEELHOUSE / whl.name).exists():
            shutil.copy2(whl, WHEELHOUSE / whl.name)
    if not any(WHEELHOUSE.glob("setuptools-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(WHEELHOUSE),
                        "setuptools>=68", "wheel"], capture_output=True, timeout=300)


@pytest.mark.slow
def test_bundle_installs_offline_into_a_fresh_venv(tmp_path):
    started = time.monotonic()
    archive, source = _build(tmp_path / "dist")
    built_in = time.monotonic() - started
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (top,) = (tmp_path / "unpacked").iterdir()
    for name in ("install.sh", "mailbot.service", "README.md", "BUILD-INFO", "SHA256SUMS",
                 "config.example.yaml", "rules/sections.yaml"):
        assert (top / name).is_file(), name
    wheels = sorted(p.name for p in (top / "wheels").glob("*.whl"))
    assert any(w.startswith("mailbot-") for w in wheels)
    assert not any(w.startswith("pytest-") for w in wheels), "test extras must stay out of the bundle"
    _keep_wheels(top)

    # Nothing but the bundle: no pip config or PIP_* of this machine, no index, and where the
    # kernel lets us, no network at all (a network namespace with only a down loopback).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHON=sys.executable)
    isolate = ["unshare", "--net"] if shutil.which("unshare") and subprocess.run(
        ["unshare", "--net", "true"], capture_output=True).returncode == 0 else []
    venv = tmp_path / "venv"
    started = time.monotonic()
    run = subprocess.run([*isolate, "bash", str(top / "install.sh"), str(venv)], cwd="/", env=env,
                         capture_output=True, text=True, timeout=600)
    installed_in = time.monotonic() - started
    assert run.returncode == 0, f"install.sh failed:\n{run.stdout}\n{run.stderr}"

    help_run = subprocess.run([str(venv / "bin" / "mailbot"), "--help"], capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0 and "usage: mailbot" in help_run.stdout, help_run.stderr
    # The migrations are package data: a wheel without them installs fine and fails at first start.
    smoke = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import sys; from pathlib import Path; from mailbot.store import Store\n"
         "s = Store('sqlite:///' + sys.argv[1] + '/db.sqlite3', Path(sys.argv[1])); s.upgrade()\n"
         "cur, head = s.schema_revision(); assert cur == head and head, (cur, head); print(head)",
         str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert smoke.returncode == 0, smoke.stderr
    rules = subprocess.run([str(venv / "bin" / "mailbot"), "rules", "check", "--rules", str(top / "rules")],
                           capture_output=True, text=True, timeout=120)
    assert rules.returncode == 0, rules.stdout + rules.stderr

    print(f"\nbundle: {archive.name} {archive.stat().st_size / 2**20:.1f} MiB ({archive.stat().st_size} bytes), "
          f"{len(wheels)} wheels, built from {source} in {built_in:.1f} s; fresh-venv install {installed_in:.1f} s"
          f"{' in a namespace with no network' if isolate else ' (--no-index; no network namespace here)'}")


def test_install_refuses_another_python(tmp_path):
    """install.sh names the Python the wheels need instead of failing inside pip."""
    (tmp_path / "BUILD-INFO").write_text("python=2.7\nmachine=x86_64\n")
    shutil.copy(ROOT / "deploy" / "install.sh", tmp_path / "install.sh")
    run = subprocess.run(["bash", str(tmp_path / "install.sh"), str(tmp_path / "venv")],
                         env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "this bundle is for Python 2.7" in run.stderr
    assert not (tmp_path / "venv").exists()


def test_systemd_unit_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        need("systemd-analyze not installed (Debian: systemd)")
    """`systemd-analyze verify` on the unit, in a stand-in root that has the venv's mailbot and systemd's units."""
    units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None)
    if units is None:
        pytest.skip("no systemd unit folder to verify against")
    root = tmp_path / "root"
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    exe = root / "opt/mailbot/venv/bin/mailbot"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    unit = root / "etc/systemd/system/mailbot.service"
    shutil.copy(ROOT / "deploy" / "mailbot.service", unit)
    run = subprocess.run(["systemd-analyze", "verify", f"--root={root}", str(unit)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and not run.stderr.strip(), run.stdout + run.stderr
    # Exposure on systemd's 0-100 scale (shown as 0.0-10.0): the unit scores 16 ("1.6 OK"); 25 is the bar.
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=25", str(unit)],
                              capture_output=True, text=True, timeout=120)
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr
