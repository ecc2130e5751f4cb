"""Everything mailbot keeps: the database (messages, submissions, outbox, shunt, mailbox
positions) and the stored files, behind one facade, `Store`."""
from mailbot.store.core import *  # noqa: F401,F403
from mailbot.store.core import __all__  # noqa: F401
