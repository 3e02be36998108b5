"""Accounts, passwords, JWT access and refresh tokens, rate limits."""
