"""The HMAC key that signs tokens: configured, or created once and kept."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

_FILE_NAME = "jwt_secret"
MIN_SECRET_BYTES = 32


def load_signing_key(configured: str | None, data_dir: Path) -> str:
    """Return the configured secret, or one kept in ``data_dir`` (created on first use).

    Raises:
        ValueError: the configured secret is shorter than 32 bytes (PyJWT's HS256 minimum).
    """
    if configured:
        if len(configured.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"COLLAB_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
        return configured
    path = data_dir / _FILE_NAME
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not both write a key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    logger.warning(
        "COLLAB_JWT_SECRET is not set: created a random signing key in %s (set it in production)",
        path,
    )
    return secret
