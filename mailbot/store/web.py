"""What the web desk keeps: the one-time login links (their hashes, never the tokens)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from mailbot.store.database import Database
from mailbot.store.schema import LoginTokenRow, _aware

__all__ = ["WebLogins"]


class WebLogins(Database):
    """One-time login links: issued for an address, good once, until they expire."""

    def add_login_token(self, token_hash: str, address: str, *, now: dt.datetime, expires_at: dt.datetime) -> None:
        with self._tx(write=True) as s:
            s.add(LoginTokenRow(token_hash=token_hash, address=address, created_at=_aware(now, "now"),
                                expires_at=_aware(expires_at, "expires_at"), used_at=None))

    def use_login_token(self, token_hash: str, *, now: dt.datetime) -> str | None:
        """The address a link was issued for, marking it used; None for an unknown, used or
        expired link. One UPDATE: two clicks racing on the same link cannot both log in."""
        now = _aware(now, "now")
        with self._tx(write=True) as s:
            done = s.execute(sa.update(LoginTokenRow)
                             .where(LoginTokenRow.token_hash == token_hash, LoginTokenRow.used_at.is_(None),
                                    LoginTokenRow.expires_at > now)
                             .values(used_at=now))
            if done.rowcount != 1:
                return None
            return s.scalars(sa.select(LoginTokenRow.address).where(LoginTokenRow.token_hash == token_hash)).one()

    def login_tokens_since(self, address: str, since: dt.datetime) -> int:
        """How many links were issued for `address` from `since` on (to cap them)."""
        with self._tx() as s:
            return s.scalar(sa.select(sa.func.count()).select_from(LoginTokenRow).where(
                LoginTokenRow.address == address, LoginTokenRow.created_at >= _aware(since, "since"))) or 0

    def forget_login_tokens(self, *, before: dt.datetime) -> int:
        """Delete the links that expired before `before` (used or not); how many."""
        with self._tx(write=True) as s:
            return s.execute(sa.delete(LoginTokenRow).where(LoginTokenRow.expires_at < _aware(before, "before"))).rowcount
