"""Prometheus metrics of the job machinery (served by ``collab serve``'s ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_TOTAL = Counter("collab_jobs_total", "Jobs that reached a final status", ["status"])
JOBS_RUNNING = Gauge("collab_jobs_running", "Jobs this process is running now")
JOB_START_SECONDS = Histogram(
    "collab_job_start_seconds",
    "Time from submit (or re-queue) to the start of a run",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
JOBS_REAPED = Counter(
    "collab_jobs_reaped_total", "Expired leases settled by the reaper", ["action"]
)
