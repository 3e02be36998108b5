"""The taskiq task: one message names one job for :meth:`JobRunner.run`."""

from __future__ import annotations

from taskiq import AsyncBroker

from executor.broker import TASK_NAME
from executor.runner import JobRunner


def register_run_job(broker: AsyncBroker, runner: JobRunner) -> None:
    """Register ``collab.run_job(job_id)`` on ``broker``, run by ``runner``."""

    async def run_job(job_id: str) -> None:
        await runner.run(job_id)

    broker.register_task(run_job, task_name=TASK_NAME)
