"""What one config builds, once: the bureau's zone, the rules (checked against the config), the
working-day calendar, the intake and the store — for the CLI, the daemon and the demo alike.

The calendar is built before any store is open; every program that opens one goes through
`attach_store`, which puts the holiday schedules the credit section loaded (kept in the store)
into the deployment's one calendar, so a restart or an upgrade keeps them.

Building it is where a deployment is refused: invalid rules, a config naming a section the rules
do not know, an unknown time zone. Each is a `WiringError` with the reason, raised before any
mail is read.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mailbot.app.config import Config, check_sections_against_rules
from mailbot.dates import zone
from mailbot.dates.workdays import WorkCalendar
from mailbot.duties.templates import template_bytes, template_filename
from mailbot.model import Rules
from mailbot.pipeline import Intake
from mailbot.rules.load import RulesError, load_rules

__all__ = ["Deployment", "WiringError", "attach_store", "build", "open_store"]


class WiringError(Exception):
    """The config and the rules cannot run together; the message says why."""


@dataclass(frozen=True)
class Deployment:
    """One deployment's parts, built by `build()` and shared by every command and the daemon."""
    config: Config
    rules: Rules
    calendar: WorkCalendar
    intake: Intake

    def template_for(self, section: str, period: str) -> tuple[str, bytes]:
        """The blank Annex 1 workbook a letter attaches: (file name, bytes)."""
        return template_filename(self.rules, section, period), template_bytes(self.rules, section, period)

    def now(self) -> dt.datetime:
        """The clock, in the bureau's zone: only the programs (cli, daemon) call this."""
        return dt.datetime.now(zone.bureau_zone())

    def open_store(self):
        """The deployment's store, its loaded holiday schedules put into the calendar."""
        return attach_store(self, open_store(self.config))

    def desk(self, store):
        """The credit section's desk over `store` (mailbot/desk/)."""
        from mailbot.desk import Desk
        return Desk(self.config, self.rules, attach_store(self, store), self.calendar, self.intake, self.template_for)


def build(config: Config, rules_dir: Path | None = None) -> Deployment:
    """Set the bureau's zone from the config, load and cross-check the rules, build the intake."""
    zone.use_zone(config.timezone)
    where = rules_dir or config.rules
    try:
        rules = load_rules(where)
    except RulesError as e:
        raise WiringError(f"invalid rules in {where}:\n{e}") from None
    bad = check_sections_against_rules(config, {s.id for s in rules.sections})
    if bad:
        raise WiringError("invalid config:\n" + "\n".join(bad))
    calendar = WorkCalendar(rules.calendar, str(where))
    addresses = {a: sid for sid, addrs in config.sections.items() for a in addrs}
    intake = Intake(rules=rules, calendar=calendar, address_sections=addresses,
                    own_addresses=config.own_addresses, mailbox_address=config.mailbox_address,
                    mailbox_name=config.mailbox_name,
                    replies_per_sender_per_hour=config.replies_per_sender_per_hour,
                    authentication=config.authentication, credit_section=config.credit_section)
    return Deployment(config, rules, calendar, intake)


def attach_store(deployment: Deployment, store):
    """`store` for `deployment`: the holiday schedules loaded into it (the newest notice of each
    year) become the calendar's, below any rules/calendar file of the same year. Returns `store`."""
    for year, loaded in store.loaded_calendars().items():
        deployment.calendar.load(year, loaded.days_off, loaded.workdays)
    return store


def open_store(config: Config):
    """The deployment's store, its schema brought up to date (the only place a Store is opened)."""
    from mailbot.store import Store      # the database libraries load only where a store is used
    config.storage.mkdir(parents=True, exist_ok=True, mode=0o700)
    # the store holds every row of every submission and letter: its owner alone reads it, even where
    # an older version or another tool made the folder or the database readable to others
    config.storage.chmod(0o700)
    store = Store(config.database, config.storage)
    store.upgrade()
    if config.database.startswith("sqlite:///"):
        db = Path(config.database.removeprefix("sqlite:///"))
        for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if f.exists():
                f.chmod(0o600)
    return store
