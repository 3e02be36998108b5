"""WebSocket close codes of the real-time endpoint, in two bands.

The stock y-websocket client (``WebsocketProvider`` 3.x) never reconnects
after a code in 4400-4499 and always reconnects, with backoff, after any
other. So the 44xx codes are kept for verdicts a reconnect cannot change
(the client sent garbage, its token is bad, it has no access, the document
is gone, a single message is over the limit), and every transient condition
(load, rate, a full document, a client that stopped reading, a reload, a
restart) uses a 10xx code the client retries after.
"""

from typing import Final

# Final: the stock client stops.
MALFORMED: Final = 4400
UNAUTHORIZED: Final = 4401
FORBIDDEN: Final = 4403
NOT_FOUND: Final = 4404
TOO_LARGE: Final = 4413

# Transient: the stock client reconnects.
INTERNAL: Final = 1011
RESTARTING: Final = 1012
TRY_AGAIN_LATER: Final = 1013

FINAL_CODES: Final = frozenset({MALFORMED, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_LARGE})


def stock_client_reconnects(code: int) -> bool:
    """What y-websocket's default ``shouldReconnect`` decides after ``code``."""
    return not 4400 <= code < 4500
