"""Typed application state owned by the storage layer."""

from aiohttp import web

from eventstore.database import Database

DATABASE = web.AppKey("eventstore.database", Database)
