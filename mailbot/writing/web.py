"""What the web desk mails: the one-time login link. The pages' own words live in mailbot/web/templates."""
from __future__ import annotations

import datetime as dt

from mailbot.dates.zone import zh_time
from mailbot.writing.common import Letter, closing, greeting, mail_domain, make_message

__all__ = ["login_letter", "LOGIN_SUBJECT"]

LOGIN_SUBJECT = "【登录链接】信用监管工作台"


def login_letter(*, to: str, section: str | None, link: str, expires_at: dt.datetime, key: str,
                 mailbox_address: str, mailbox_name: str, now: dt.datetime) -> Letter:
    """The link that logs `to` in to the web desk once, until `expires_at`. `key`: unique per link
    (a hash of the token, never the token), for the Message-ID."""
    lines = [greeting(section), "",
             f"    {zh_time(now)}有人在{mailbox_name}报送工作台的登录页面输入了您的邮箱地址。请点击下面的链接登录：", "",
             f"    {link}", "",
             f"    链接仅可使用一次，{zh_time(expires_at)}前有效。如非本人操作，请忽略本邮件，"
             "不点击链接就无法登录；请勿将链接转发他人。",
             *closing(mailbox_name, now, thanks=False)]
    message_id = f"login.{key[:16]}@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=[to], subject=LOGIN_SUBJECT,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now, auto_submitted="auto-generated")
    return Letter("login", (to,), LOGIN_SUBJECT, message_id, raw)
