"""Running the app under uvicorn, with the shutdown the issue asks for: SIGTERM / Ctrl-C stop accepting, the requests
in flight finish, and the process exits 0 (uvicorn itself re-raises the signal after its graceful shutdown, which
makes a supervisor see "killed by SIGTERM" for a clean stop)."""

from __future__ import annotations

import contextlib
import signal
import threading

import uvicorn

from .config import ServeConfig


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_server(app, config: ServeConfig, *, verbose: bool = False) -> None:
    server = _Server(uvicorn.Config(app, host=config.host, port=config.port,
                                    log_level="debug" if verbose else "warning",
                                    timeout_graceful_shutdown=max(config.timeout_s, 5.0)))
    server.run()
