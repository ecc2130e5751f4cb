"""The credit section's desk: what it can do without a shell, one function an action.

core.py      Actor (who), Answer (what came of it), Refused, @audited (the audit log), Desk
actions.py   query, package, remind, bulletin, confirm, reject, ignore, reclassify, close_month, help
holidays.py  load a year's holiday schedule from the State Council's notice
commands.py  the mail commands: a command mail read into an action and its arguments

The mail commands, the web desk and the CLI call the same actions (`ACTIONS`).
"""
from mailbot.desk.core import ACTIONS, Actor, Answer, Desk, Refused, audited
from mailbot.desk import actions  # noqa: E402,F401 - every action registers itself in ACTIONS
from mailbot.desk.holidays import load_holidays

__all__ = ["ACTIONS", "Actor", "Answer", "Desk", "Refused", "audited", "load_holidays"]
