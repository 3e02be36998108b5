"""The jobs API on both backends, with the in-process runner and the real sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from prometheus_client import REGISTRY

from executor.sandbox.languages import LANGUAGES
from tests.auth.fixtures import assert_error
from tests.conftest import Client
from tests.executor.conftest import (
    DocumentWriter,
    auth,
    collect_events,
    read_events,
    run,
    submit,
    wait_job,
)
from tests.realtime.seed import Seeded, add_document

_FINAL = ("succeeded", "failed", "timed_out", "cancelled", "error")


async def test_inline_python_succeeds_with_its_output(client: Client, team: Seeded) -> None:
    job = await submit(client, team, {"language": "python", "source": "print('hello')"})
    assert job["status"] == "queued"
    assert job["project_id"] == team.project_id
    assert job["document_id"] is None
    assert job["seq"] is None
    done = await wait_job(client, team, job["id"])
    assert done["status"] == "succeeded"
    assert done["exit_code"] == 0
    assert done["stdout"] == "hello\n"
    assert done["stderr"] == ""
    assert done["truncated"] is False
    assert done["error"] is None
    assert done["duration_ms"] >= 0
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    assert done["finished_at"].endswith("Z")
    assert set(done) == {
        "id", "project_id", "document_id", "seq", "language", "status", "exit_code", "stdout",
        "stderr", "truncated", "duration_ms", "created_at", "started_at", "finished_at", "error",
        "output",
    }  # fmt: skip


async def test_javascript_runs(client: Client, team: Seeded) -> None:
    done = await run(client, team, {"language": "javascript", "source": "console.log(6 * 7)"})
    assert (done["status"], done["stdout"], done["language"]) == ("succeeded", "42\n", "javascript")


async def test_stdin_is_passed_through(client: Client, team: Seeded) -> None:
    source = "import sys\nprint(sys.stdin.read().upper(), end='')"
    done = await run(client, team, {"language": "python", "source": source, "stdin": "abc\nd"})
    assert done["stdout"] == "ABC\nD"


async def test_nonzero_exit_fails_and_stderr_is_separate(client: Client, team: Seeded) -> None:
    source = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"
    done = await run(client, team, {"language": "python", "source": source})
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert done["stdout"] == "out\n"
    assert done["stderr"] == "err\n"


async def test_wall_time_limit_gives_timed_out(client: Client, team: Seeded) -> None:
    source = "while True: pass"
    done = await run(client, team, {"language": "python", "source": source, "timeout_ms": 500})
    assert done["status"] == "timed_out"
    assert done["duration_ms"] < 5000


async def test_document_job_runs_the_text_at_submit_time(client: Client, team: Seeded) -> None:
    writer = DocumentWriter(client, team, team.doc_id)
    await writer.replace("print('first')")
    seq = await writer.replace("print('second')")
    job = await submit(client, team, {"document_id": team.doc_id})
    # Edits after the submit do not change what runs.
    await writer.replace("print('third')")
    done = await wait_job(client, team, job["id"])
    assert (done["seq"], done["document_id"], done["language"]) == (seq, team.doc_id, "python")
    assert done["stdout"] == "second\n"


async def test_document_in_text_language_cannot_run(client: Client, team: Seeded) -> None:
    doc_id = await add_document(client.app, team.project_id)
    response = await client.patch(
        f"/api/documents/{doc_id}", json={"language": "text"}, headers=auth(team, "owner")
    )
    assert response.status == 200, await response.text()
    response = await client.post(
        "/api/jobs", json={"document_id": doc_id}, headers=auth(team, "editor")
    )
    error = await assert_error(response, 422, "validation_failed")
    assert "document_id" in error["details"]


async def test_viewer_reads_but_cannot_submit_or_cancel(client: Client, team: Seeded) -> None:
    job = await submit(client, team, {"language": "python", "source": "print(1)"})
    inline = {"project_id": team.project_id, "language": "python", "source": "print(1)"}
    for body in (inline, {"document_id": team.doc_id}):
        response = await client.post("/api/jobs", json=body, headers=auth(team, "viewer"))
        await assert_error(response, 403, "forbidden")
    response = await client.post(f"/api/jobs/{job['id']}/cancel", headers=auth(team, "viewer"))
    await assert_error(response, 403, "forbidden")
    await wait_job(client, team, job["id"])
    response = await client.get(f"/api/jobs/{job['id']}", headers=auth(team, "viewer"))
    assert response.status == 200
    response = await client.get(
        f"/api/projects/{team.project_id}/jobs", headers=auth(team, "viewer")
    )
    assert [item["id"] for item in (await response.json())["items"]] == [job["id"]]
    events = await collect_events(client, team, job["id"])
    assert events[-1][0] == "done"


async def test_non_member_sees_nothing(client: Client, team: Seeded) -> None:
    job = await submit(client, team, {"language": "python", "source": "print(1)"})
    stranger = auth(team, "stranger")
    inline = {"project_id": team.project_id, "language": "python", "source": "print(1)"}
    for body in (inline, {"document_id": team.doc_id}):
        response = await client.post("/api/jobs", json=body, headers=stranger)
        await assert_error(response, 404, "not_found")
    for method, path in [
        ("GET", f"/api/jobs/{job['id']}"),
        ("GET", f"/api/jobs/{job['id']}/events"),
        ("POST", f"/api/jobs/{job['id']}/cancel"),
        ("GET", f"/api/projects/{team.project_id}/jobs"),
        ("GET", "/api/jobs/no-such-job"),
    ]:
        response = await client.request(method, path, headers=stranger)
        await assert_error(response, 404, "not_found")
    response = await client.get("/api/jobs/no-such-job", headers=auth(team, "owner"))
    await assert_error(response, 404, "not_found")


async def test_requests_need_a_token(client: Client, team: Seeded) -> None:
    response = await client.post(
        "/api/jobs", json={"project_id": team.project_id, "language": "python", "source": "1"}
    )
    await assert_error(response, 401)


async def test_validation_errors(client: Client, team: Seeded) -> None:
    headers = auth(team, "editor")
    base = {"project_id": team.project_id, "language": "python", "source": "print(1)"}
    cases = [
        ({**base, "language": "cobol"}, "language"),
        ({**base, "timeout_ms": 60_001}, "timeout_ms"),
        ({**base, "timeout_ms": 0}, "timeout_ms"),
        ({**base, "timeout_ms": "10"}, "timeout_ms"),
        ({"project_id": team.project_id, "language": "python"}, "source"),
        ({"document_id": team.doc_id, "source": "print(2)"}, "source"),
        ({**base, "source": "print('\x00')"}, "source"),
        ({**base, "stdin": 5}, "stdin"),
    ]
    for body, field in cases:
        response = await client.post("/api/jobs", json=body, headers=headers)
        error = await assert_error(response, 422, "validation_failed")
        assert field in error["details"], (body, error)
    response = await client.post("/api/jobs", data=b"{not json", headers=headers)
    await assert_error(response, 400)


async def test_oversized_source_and_stdin_are_413(client: Client, team: Seeded) -> None:
    headers = auth(team, "editor")
    base = {"project_id": team.project_id, "language": "python", "source": "print(1)"}
    big = "#" * (256 * 1024 + 1)
    for body, field in [({**base, "source": big}, "source"), ({**base, "stdin": big}, "stdin")]:
        response = await client.post("/api/jobs", json=body, headers=headers)
        error = await assert_error(response, 413, "payload_too_large")
        assert field in error["details"]
    # Multi-byte characters count as the bytes they take.
    response = await client.post(
        "/api/jobs", json={**base, "source": "é" * (128 * 1024 + 1)}, headers=headers
    )
    await assert_error(response, 413, "payload_too_large")
    response = await client.get(f"/api/projects/{team.project_id}/jobs", headers=headers)
    assert (await response.json())["items"] == []


async def test_list_is_newest_first(client: Client, team: Seeded) -> None:
    ids = [
        (await submit(client, team, {"language": "python", "source": f"print({n})"}))["id"]
        for n in range(3)
    ]
    response = await client.get(
        f"/api/projects/{team.project_id}/jobs", headers=auth(team, "viewer")
    )
    assert [job["id"] for job in (await response.json())["items"]] == ids[::-1]
    response = await client.get(
        f"/api/projects/{team.project_id}/jobs?limit=1", headers=auth(team, "viewer")
    )
    assert [job["id"] for job in (await response.json())["items"]] == ids[-1:]
    response = await client.get(
        f"/api/projects/{team.project_id}/jobs?limit=0", headers=auth(team, "viewer")
    )
    await assert_error(response, 422, "validation_failed")
    for job_id in ids:
        await wait_job(client, team, job_id)


async def test_event_stream_shows_status_output_and_done_in_order(
    client: Client, team: Seeded
) -> None:
    source = "import time\nprint('one')\ntime.sleep(0.3)\nprint('two')"
    job = await submit(client, team, {"language": "python", "source": source})
    events = await collect_events(client, team, job["id"])
    names = [name for name, _ in events]
    assert names[-1] == "done"
    assert events[-1][1]["status"] == "succeeded"
    assert events[-1][1]["stdout"] == "one\ntwo\n"
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[-1] == "succeeded"
    assert "running" in statuses
    stdout = "".join(data["text"] for name, data in events if name == "stdout")
    assert stdout == "one\ntwo\n"
    # Output comes between "running" and the final status.
    first_out = names.index("stdout")
    assert names.index("status") < first_out
    assert max(i for i, n in enumerate(names) if n == "stdout") < len(names) - 2


async def test_event_stream_of_a_finished_job(client: Client, team: Seeded) -> None:
    source = "import sys\nprint('out')\nprint('err', file=sys.stderr)"
    done = await run(client, team, {"language": "python", "source": source})
    events = await collect_events(client, team, done["id"])
    assert events == [
        ("stdout", {"text": "out\n"}),
        ("stderr", {"text": "err\n"}),
        ("status", {"id": done["id"], "status": "succeeded"}),
        ("done", done),
    ]


async def test_cancel_while_running_stops_within_a_second(client: Client, team: Seeded) -> None:
    source = "import time\nprint('started')\ntime.sleep(30)"
    job = await submit(client, team, {"language": "python", "source": source})
    printed = ""
    async with asyncio.timeout(10):
        async for name, data in read_events(client, team, job["id"]):
            printed += data["text"] if name == "stdout" else ""
            # print() writes the text and the newline separately: on a busy
            # machine the cancel could land between the two.
            if printed.endswith("\n"):
                break  # it is running, and printed its whole line
    started = time.monotonic()
    response = await client.post(f"/api/jobs/{job['id']}/cancel", headers=auth(team, "editor"))
    assert response.status == 202
    done = await wait_job(client, team, job["id"], within=5)
    assert time.monotonic() - started < 1.0
    assert done["status"] == "cancelled"
    assert done["stdout"] == "started\n"


async def test_cancelled_queued_job_never_starts(client: Client, team: Seeded) -> None:
    # Fill every runner slot (the settings fixture runs two at a time).
    sleeper = {"language": "python", "source": "import time\ntime.sleep(30)"}
    blockers = [await submit(client, team, sleeper) for _ in range(2)]
    for blocker in blockers:
        await wait_job(client, team, blocker["id"], until=("running",))
    waiting = await submit(client, team, {"language": "python", "source": "print('ran')"})
    response = await client.post(f"/api/jobs/{waiting['id']}/cancel", headers=auth(team, "editor"))
    assert response.status == 202
    assert (await response.json())["status"] == "cancelled"
    for blocker in blockers:
        await client.post(f"/api/jobs/{blocker['id']}/cancel", headers=auth(team, "editor"))
        await wait_job(client, team, blocker["id"])
    await asyncio.sleep(0.3)
    done = await wait_job(client, team, waiting["id"])
    assert (done["status"], done["started_at"], done["stdout"]) == ("cancelled", None, "")
    # Cancelling a finished job changes nothing.
    response = await client.post(f"/api/jobs/{waiting['id']}/cancel", headers=auth(team, "owner"))
    assert response.status == 202
    assert (await response.json())["status"] == "cancelled"


async def test_readiness_reports_the_sandbox(client: Client) -> None:
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200
    assert body["checks"]["sandbox"].startswith("sandbox mode=")


async def test_openapi_describes_the_job_routes(client: Client) -> None:
    spec = await (await client.get("/api/docs/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/api/jobs"]) >= {"post"}
    assert "requestBody" in paths["/api/jobs"]["post"]
    assert "202" in paths["/api/jobs"]["post"]["responses"]
    assert "get" in paths["/api/jobs/{job_id}"]
    assert "get" in paths["/api/projects/{project_id}/jobs"]
    assert "text/event-stream" in str(paths["/api/jobs/{job_id}/events"]["get"]["responses"])
    assert "202" in paths["/api/jobs/{job_id}/cancel"]["post"]["responses"]


async def test_missing_runtime_is_a_clear_job_error(
    client: Client, team: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = dataclasses.replace(LANGUAGES["javascript"], runtime="/nonexistent/bin/node")
    monkeypatch.setitem(LANGUAGES, "javascript", gone)
    done = await run(client, team, {"language": "javascript", "source": "console.log(1)"})
    assert done["status"] == "error"
    assert "/nonexistent/bin/node" in done["error"]
    assert "not available" in done["error"]


async def test_finished_jobs_are_counted_in_metrics(client: Client, team: Seeded) -> None:
    before = REGISTRY.get_sample_value("collab_jobs_total", {"status": "failed"}) or 0.0
    await run(client, team, {"language": "python", "source": "raise SystemExit(1)"})
    text = await (await client.get("/metrics")).text()
    assert 'collab_jobs_total{status="failed"}' in text
    assert REGISTRY.get_sample_value("collab_jobs_total", {"status": "failed"}) == before + 1
