"""WebSocket close codes of the real-time endpoint, and what the stock client does after each."""

from typing import Final

MALFORMED: Final = 4400
UNAUTHORIZED: Final = 4401
FORBIDDEN: Final = 4403
NOT_FOUND: Final = 4404
TOO_LARGE: Final = 4413
RATE_LIMITED: Final = 4429
INTERNAL: Final = 1011
RESTARTING: Final = 1012
TRY_AGAIN_LATER: Final = 1013
