"""Typed application state owned by the executor package."""

from aiohttp import web

from executor.service import JobService

JOBS = web.AppKey("executor.jobs", JobService)
