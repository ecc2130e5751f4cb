"""Who acts at the desk, what an action answers, and the audit every action passes through.

An action is a function `action(desk, actor, ..., now, ref=None) -> Answer` decorated with
`@audited("id")`: the mail commands (desk/commands.py), the web desk and the operator's CLI all
call these same functions, and each call is one row of the audit log (store/desk.py). A refusal
(`Refused`, with the reason in Chinese for the person and in English for the log) is an answer,
not an error; anything else raised is recorded as failed and raised on.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailbot.redact import redact

if TYPE_CHECKING:
    from mailbot.app.config import Config
    from mailbot.dates.workdays import WorkCalendar
    from mailbot.duties.office import Office
    from mailbot.model import Rules
    from mailbot.pipeline import Intake, TemplateFor
    from mailbot.store import Store

__all__ = ["Actor", "Answer", "Desk", "Refused", "audited", "ACTIONS"]

log = logging.getLogger("mailbot.desk")

# action id → the function, filled by @audited: what the desk can do, in one list
ACTIONS: dict[str, Callable[..., Answer]] = {}


@dataclass(frozen=True)
class Actor:
    """Who acts: a registered address of the credit section or of a section, or the operator at
    the server's shell; and through which channel."""
    address: str
    role: str                     # "credit" | "section" | "operator"
    section: str | None
    channel: str                  # "mail" | "web" | "cli"

    @property
    def is_credit(self) -> bool:
        """The credit section (or the operator acting for it) may do everything."""
        return self.role in ("credit", "operator")

    @classmethod
    def of(cls, config: Config, address: str, channel: str) -> Actor | None:
        """The actor a registered address is; None for an address no section registered."""
        section = config.section_of_address(address)
        if section is None:
            return None
        role = "credit" if section == config.credit_section else "section"
        return cls(address.strip().lower(), role, section, channel)

    @classmethod
    def operator(cls, config: Config) -> Actor:
        return cls("operator", "operator", config.credit_section, "cli")


@dataclass(frozen=True)
class Answer:
    """What an action did, for the person who asked (`text`, Chinese; `html` where a table helps;
    `attachments`) and for the log, the audit and JSON (`summary`, English; `data`)."""
    action: str
    ok: bool
    summary: str
    text: str
    html: str | None = None
    attachments: tuple[tuple[str, bytes, str], ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    """An action that cannot be done as asked: `text` tells the person why (Chinese), `summary` the log."""

    def __init__(self, text: str, summary: str):
        super().__init__(summary)
        self.text = text
        self.summary = summary


class Desk:
    """One deployment's desk: the parts every action needs."""

    def __init__(self, config: Config, rules: Rules, store: Store, calendar: WorkCalendar, intake: Intake,
                 template_for: TemplateFor | None = None):
        from mailbot.duties.office import Office
        self.config = config
        self.rules = rules
        self.store = store
        self.calendar = calendar
        self.intake = intake
        self.template_for = template_for
        self.office: Office = Office(config, rules, store, calendar)


def _plain(value: Any) -> Any:
    """An argument as the audit log keeps it: JSON values; bytes by size, never content."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def audited(action: str) -> Callable[[Callable[..., Answer]], Callable[..., Answer]]:
    """Make `fn(desk, actor, ..., now, ref=None)` a desk action: registered under `action`, every
    call recorded in the audit log (once per `ref`: a replayed command mail is one row)."""
    def wrap(fn: Callable[..., Answer]) -> Callable[..., Answer]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def act(desk: Desk, actor: Actor, *args: Any, now: dt.datetime, ref: str | None = None, **kwargs: Any) -> Answer:
            if "ref" in signature.parameters:        # actions that queue mail key it by the request
                kwargs["ref"] = ref
            bound = signature.bind(desk, actor, *args, now=now, **kwargs)
            shown = {k: _plain(v) for k, v in bound.arguments.items() if k not in ("desk", "actor", "now", "ref")}
            try:
                answer = fn(desk, actor, *args, now=now, **kwargs)
            except Refused as e:
                answer = Answer(action, False, e.summary, e.text)
            except Exception as e:
                desk.store.record_audit(actor=actor.address, role=actor.role, section=actor.section,
                                        channel=actor.channel, action=action, args=shown, ok=False,
                                        result=f"failed: {type(e).__name__}: {redact(e)}", ref=ref, now=now)
                raise
            desk.store.record_audit(actor=actor.address, role=actor.role, section=actor.section, channel=actor.channel,
                                    action=action, args=shown, ok=answer.ok, result=answer.summary, ref=ref, now=now)
            log.info("desk %s by %s (%s): %s", action, actor.address, actor.channel, answer.summary)
            return answer

        ACTIONS[action] = act
        return act
    return wrap
