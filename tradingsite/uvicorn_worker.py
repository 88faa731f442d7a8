"""The gunicorn worker class of the production server: uvicorn's, without its `Server` header
and with websocket messages bounded to 1 MiB (uvicorn allows 16 MiB; daphne 1 MiB).

uvicorn adds `server: uvicorn` to every response by default; naming the server and its version
only helps scanners (reliability.md T2), so this worker turns it off. Start gunicorn with
`-k tradingsite.uvicorn_worker.UvicornWorker` (docker/entrypoint.sh).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker


class UvicornWorker(_UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        **_UvicornWorker.CONFIG_KWARGS,
        "server_header": False,
        # Larger messages are closed with 1009 before reaching the app; the same bound as
        # tradingsite.consumers.MAX_MESSAGE_BYTES (a literal: this imports before Django).
        "ws_max_size": 1024 * 1024,
    }
