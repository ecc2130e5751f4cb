"""The pure stages know nothing of IMAP, SMTP, the database or the scheduler: they load without them."""
import subprocess
import sys
from pathlib import Path

# every module of these packages is pure; a new module added to one is checked without a change here
PURE_PACKAGES = ["dates", "rules", "intake", "writing"]
PURE = ["model", "app.config", "duties.templates", "duties.status", "duties.reminders", "duties.package"] + [
    f"{pkg}.{f.stem}" for pkg in PURE_PACKAGES
    for f in sorted((Path(__file__).resolve().parents[1] / "mailbot" / pkg).glob("*.py"))]

SCRIPT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'imap_tools', 'aiosmtplib', 'aiosmtpd', 'sqlalchemy', 'alembic', 'apscheduler', 'psycopg'}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
import importlib
for m in %r:
    importlib.import_module('mailbot.' + m)
print('ok')
"""


def test_pure_modules_load_without_io_libraries():
    r = subprocess.run([sys.executable, "-c", SCRIPT % PURE], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
