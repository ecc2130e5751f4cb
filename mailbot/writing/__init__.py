"""Every text a person reads, one module per kind of letter, sharing common.py's greeting, closing and task label.

receipt.py: receipts, rejections, quarantine notices; template_letter.py: the blank template on request;
reminder.py: reminders and overdue notices; digest.py: the digest, "all in" notice and package mail;
notices.py: the missing-holiday-schedule warning; honesty.py: a file reused from another month, a joint row merged;
desk_holidays.py: the answer to a holiday notice loaded at the desk.
"""
