"""The pure stages know nothing of IMAP, SMTP, the database or the scheduler: they load without them."""
import subprocess
import sys

PURE = ["model", "rules", "parse", "mimenames", "unpack", "screen", "filetype", "workbook", "uscc", "validate",
        "classify", "workdays", "deadlines", "letters", "templates", "config", "deadlines", "status", "reminders", "package"]

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
