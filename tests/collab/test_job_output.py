"""Job output: stdout and stderr in the order printed, and tracebacks that name the document."""

from __future__ import annotations

import pytest

from executor.naming import display_name, path_renamer
from tests.conftest import Client
from tests.executor.conftest import DocumentWriter, collect_events, run, submit
from tests.executor.conftest import team as team
from tests.realtime.seed import Seeded

# Two pipes carry the two streams, so only what the server can observe is
# ordered: pieces written a moment apart (here 50 ms), as a person reads them.
INTERLEAVED = """import sys, time
print("one", flush=True)
time.sleep(0.05)
print("two", file=sys.stderr, flush=True)
time.sleep(0.05)
print("three", flush=True)
time.sleep(0.05)
raise SystemExit("four")
"""


async def test_output_keeps_the_order_between_streams(client: Client, team: Seeded) -> None:
    job = await run(client, team, {"language": "python", "source": INTERLEAVED})
    assert (job["stdout"], job["stderr"]) == ("one\nthree\n", "two\nfour\n")  # unchanged
    assert [(c["stream"], c["offset"], c["text"]) for c in job["output"]] == [
        ("stdout", 0, "one\n"),
        ("stderr", 0, "two\n"),
        ("stdout", 4, "three\n"),
        ("stderr", 4, "four\n"),
    ]
    events = await collect_events(client, team, job["id"])  # a finished job, replayed
    output = [(name, data["text"]) for name, data in events if name in ("stdout", "stderr")]
    assert output == [
        ("stdout", "one\n"),
        ("stderr", "two\n"),
        ("stdout", "three\n"),
        ("stderr", "four\n"),
    ]


async def test_live_events_come_in_printed_order(client: Client, team: Seeded) -> None:
    job = await submit(client, team, {"language": "python", "source": INTERLEAVED})
    events = await collect_events(client, team, job["id"])
    output = "".join(data["text"] for name, data in events if name in ("stdout", "stderr"))
    assert output == "one\ntwo\nthree\nfour\n"


async def test_traceback_names_the_document(client: Client, team: Seeded) -> None:
    renamed = await client.patch(
        f"/api/documents/{team.doc_id}",
        json={"name": "fib.py"},
        headers={"Authorization": f"Bearer {team.tokens['owner']}"},
    )
    assert renamed.status == 200
    await DocumentWriter(client, team, team.doc_id).replace("x = 1\nraise ValueError(x)\n")
    job = await run(client, team, {"document_id": team.doc_id})
    assert job["status"] == "failed"
    assert 'File "fib.py", line 2' in job["stderr"]
    assert "/sandbox/main.py" not in job["stderr"]
    assert all("/sandbox/main.py" not in chunk["text"] for chunk in job["output"])


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("fib.py", "fib.py"),
        ('evil"/../x\n.py', "evil..x.py"),
        ("\x00\x01", ""),
        ("  spaced name.py ", "spaced name.py"),
    ],
)
def test_document_names_are_sanitised(name: str, shown: str) -> None:
    assert display_name(name) == shown


def test_inline_jobs_keep_the_sandbox_path() -> None:
    text = 'File "/sandbox/main.py", line 1'
    assert path_renamer("python", None)(text) == text
    assert path_renamer("python", "a.py")(text) == 'File "a.py", line 1'
    assert path_renamer("cobol", "a.py")(text) == text
