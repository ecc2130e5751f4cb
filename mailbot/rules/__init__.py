"""The plan as data: load and cross-check rules/, every mistake with its file and line."""
from mailbot.rules.load import *  # noqa: F401,F403
from mailbot.rules.load import __all__  # noqa: F401
