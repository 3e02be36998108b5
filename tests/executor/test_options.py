"""The COLLAB_JOB_* variables and the worker's refusal to start without Redis."""

from __future__ import annotations

import pytest

from collab.config import Settings
from executor.options import JobOptions, OptionsError
from executor.worker import run_worker


def test_defaults_and_overrides() -> None:
    assert JobOptions.from_env({}) == JobOptions()
    options = JobOptions.from_env(
        {
            "COLLAB_JOB_QUEUE": "q1",
            "COLLAB_JOB_CONCURRENCY": "4",
            "COLLAB_JOB_LEASE_SECONDS": "4",
            "COLLAB_JOB_HEARTBEAT_SECONDS": "1.5",
            "COLLAB_JOB_MAX_ATTEMPTS": "5",
            "COLLAB_JOB_REAP_SECONDS": "0.5",
            "COLLAB_JOB_REQUEUE_SECONDS": "60",
            "COLLAB_JOB_MAX_QUEUED": "10",
        }
    )
    assert options == JobOptions(
        queue_name="q1",
        concurrency=4,
        lease_seconds=4,
        heartbeat_seconds=1.5,
        max_attempts=5,
        reap_seconds=0.5,
        requeue_seconds=60,
        max_queued=10,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"COLLAB_JOB_LEASE_SECONDS": "soon"}, "COLLAB_JOB_LEASE_SECONDS"),
        ({"COLLAB_JOB_MAX_ATTEMPTS": "0"}, "COLLAB_JOB_MAX_ATTEMPTS"),
        ({"COLLAB_JOB_HEARTBEAT_SECONDS": "20"}, "COLLAB_JOB_HEARTBEAT_SECONDS"),
        ({"COLLAB_JOB_CONCURRENCY": "1.5"}, "COLLAB_JOB_CONCURRENCY"),
        ({"COLLAB_JOB_CONCURRENCY": "0"}, "COLLAB_JOB_CONCURRENCY"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(OptionsError, match=named):
        JobOptions.from_env(env)


def test_queue_is_named_after_the_redis_prefix() -> None:
    assert JobOptions.from_env({}, redis_prefix="acme").queue_name == "acme:jobs"
    assert JobOptions.from_env({"COLLAB_JOB_QUEUE": "q1"}, redis_prefix="acme").queue_name == "q1"
    settings = Settings.from_env({"COLLAB_REDIS_PREFIX": "staging"})
    assert (settings.jobs.redis_prefix, settings.jobs.queue_name) == ("staging", "staging:jobs")
    assert Settings.from_env({}).jobs.queue_name == "collab:jobs"


def test_settings_carry_the_job_options() -> None:
    settings = Settings.from_env({"COLLAB_JOB_CONCURRENCY": "3", "COLLAB_JOB_MAX_ATTEMPTS": "5"})
    assert settings.job_concurrency == settings.jobs.concurrency == 3
    assert settings.jobs.max_attempts == 5


def test_worker_needs_redis(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_worker(Settings(database_url="sqlite:///unused.db")) == 2
    assert "COLLAB_REDIS_URL" in capsys.readouterr().err
