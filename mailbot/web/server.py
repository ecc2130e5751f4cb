"""Serving the web desk with uvicorn: in the foreground (`mailbot web`) or as a thread of the
daemon (`mailbot run` with `web:` in the config), on its own event loop, stopped by `stop()`."""
from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["WebServer"]

log = logging.getLogger("mailbot.web")


class WebServer:
    """uvicorn.Server around an ASGI app; `run()` blocks, `start()` runs it in a thread."""

    def __init__(self, app: Any, host: str, port: int):
        import uvicorn
        self.host, self.port = host, port
        # proxy_headers: behind nginx on the same host the client address comes from X-Forwarded-For
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning",
                                proxy_headers=True, forwarded_allow_ips="127.0.0.1", server_header=False)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """In the foreground (uvicorn handles SIGTERM/SIGINT itself in the main thread)."""
        log.info("web desk on http://%s:%s", self.host, self.port)
        self.server.run()

    def start(self) -> None:
        """In a thread with its own event loop (uvicorn installs no signal handlers there)."""
        self.thread = threading.Thread(target=self.run, name="web", daemon=True)
        self.thread.start()

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def stop(self, timeout: float = 30) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
