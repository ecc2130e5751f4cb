"""The credit section's desk on the web: the month at a glance, every message and file, the
quarantine's buttons, the downloads. Server-rendered pages (Starlette + Jinja2) acting through the
same desk actions as the mail commands (mailbot/desk/); `app.create_app` builds it, `server`
runs it (alone: `mailbot web`; in the daemon: a thread of `mailbot run`)."""
