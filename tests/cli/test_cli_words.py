"""What a person reads is true and in people's words: names beside ids, ISO times, no reprs,
runbook steps in their own column, and a no_fault incident that says why it needs nothing."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.cli import cli

from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock

#: a Python representation where words belong
REPR = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\[\]|\{\}|\{'|\['|': |datetime\.")
#: seconds since 1970 (2001..2286) where an ISO time belongs
EPOCH = re.compile(r"(?<![\w.:/-])[1-9]\d{9}(?:\.\d+)?(?![\w.:/-])")
#: a runbook step inside a sentence
RUNBOOK_IN_SENTENCE = re.compile(r"\((?:[A-D] )?[a-d][0-9]\)")

FOREVER = ("--since", "2d", "--until", "2100-01-01")

#: about twenty commands, each a new process, on a shared machine
pytestmark = pytest.mark.timeout(400)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.args, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def demo_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every text view of the demo world: each playbook's run, the report, histories."""
    tmp = tmp_path_factory.mktemp("demo-words")
    journal = tmp / "journal.sqlite3"
    config = tmp / "doorfix.toml"
    config.write_text(
        f'[journal]\npath = "{journal}"\n[sandbox]\nembedded = true\n', encoding="utf-8"
    )
    base = ("--config", str(config))
    out: dict[str, str] = {}
    for playbook in ("door-logs", "aca-rejections", "license-renewal"):
        out[f"run {playbook}"] = _ok(cli(*base, "run", playbook))
    # a fresh world (no config: the embedded sandbox), before any renewal
    out["run json"] = _ok(cli("run", "license-renewal", "--dry-run", "--json"))
    out["report text"] = _ok(cli(*base, "report", *FOREVER))
    for fmt in ("markdown", "html", "json"):
        out[f"report {fmt}"] = _ok(cli(*base, "report", *FOREVER, "--format", fmt))
    for option, value in (
        ("--user", "u-1"),
        ("--user", "u-11"),
        ("--lock", "l-3"),
        ("--door", "d-8"),
        ("--door", "d-11"),
        ("--personnel", "per-17"),
        ("--visitor", "vtr-1"),
    ):
        out[f"history {option} {value}"] = _ok(cli(*base, "history", option, value))
    out["history json"] = _ok(cli(*base, "history", "--user", "u-11", "--format", "json"))
    return out


def test_no_text_view_shows_a_python_repr_or_epoch_seconds(demo_outputs: dict[str, str]) -> None:
    views = {k: v for k, v in demo_outputs.items() if "json" not in k}
    assert len(views) >= 10
    for name, text in views.items():
        assert not REPR.findall(text), (name, REPR.findall(text))
        assert not EPOCH.findall(text), (name, EPOCH.findall(text))
        assert not RUNBOOK_IN_SENTENCE.findall(text), (name, RUNBOOK_IN_SENTENCE.findall(text))


def test_names_stand_beside_ids_in_every_view(demo_outputs: dict[str, str]) -> None:
    assert "Gym (d-8)" in demo_outputs["history --door d-8"]
    assert "lock 501 (l-3)" in demo_outputs["history --lock l-3"]
    assert "Annex entrance" in demo_outputs["run license-renewal"]
    assert "lock 701 (l-1)" in demo_outputs["report html"]
    assert "lock 701 (l-1)" in re.sub(r"\\(.)", r"\1", demo_outputs["report markdown"])
    text = " ".join(demo_outputs["report text"].split())
    assert "Gym (d-8)" in text
    report = json.loads(demo_outputs["report json"])
    problems = [p for section in report["sections"].values() for p in section]
    clp = next(p for p in problems if p["cause"] == "aca.clp_out_of_sync")
    assert clp["names"]["lock_id"] == "701"


def test_runbook_steps_have_their_own_column_and_field(demo_outputs: dict[str, str]) -> None:
    markdown = re.sub(r"\\(.)", r"\1", demo_outputs["report markdown"])
    assert "| cause | runbook | subject |" in markdown
    assert "| aca.clp_out_of_sync | C c1 |" in markdown
    assert "<th>runbook</th>" in demo_outputs["report html"]
    report = json.loads(demo_outputs["report json"])
    steps = {
        p["cause"]: p["runbook_step"] for section in report["sections"].values() for p in section
    }
    assert steps["aca.iq_out_of_sync"] == "C c2"
    assert steps["aca.lock_offline"] == "A a1"
    run = json.loads(demo_outputs["run json"])
    assert all(i["runbook_step"] for i in run["incidents"])


def test_times_in_text_views_are_iso_8601_utc(demo_outputs: dict[str, str]) -> None:
    lines = demo_outputs["report text"].splitlines()
    # the first line under the embedded sandbox's banner
    header = next(line for line in lines if not line.startswith("[embedded sandbox"))
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ to 2100-01-01T00:00Z", header), header
    history = demo_outputs["history --user u-1"]
    assert re.search(r"^  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ", history, re.MULTILINE), history


def test_an_active_license_is_never_called_the_cause(demo_outputs: dict[str, str]) -> None:
    """d-3's license is active and due: the checklist says it is due, not that it is down."""
    run = json.loads(demo_outputs["run json"])
    due = [i for i in run["incidents"] if i["evidence"].get("license_status") == "active"]
    assert due, "the demo has a license due within the lookahead"
    for incident in due:
        texts = [step["text"] for step in incident["steps"]]
        assert not [t for t in texts if "license is active" in t], texts
        assert "expires on" in texts[0], texts


def _no_fault_journal(path: Path) -> None:
    """Two no_fault incidents: one refused as designed, one whose fault was already gone."""
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    with Journal(path, clock=clock) as journal:
        run = journal.start_run("door-logs", dry_run=False)
        for key, cause, door, name, note in (
            ("k-1", "cloud.no_access_group", "d-1", "Gym", "refused as designed: no booking"),
            (
                "k-2",
                "cloud.license_inactive",
                "d-2",
                "Bike storage",
                "already resolved: the door's license is active again",
            ),
        ):
            row = journal.open_incident(
                key=key,
                cause=cause,
                subject={"center_id": "c-1", "door_id": door},
                run_id=run,
                event_ids=[f"ev-{key}"],
                evidence={"door_name": name},
            )
            journal.set_outcome(row.incident_id, outcome="no_fault", run_id=run, note=note)
        journal.finish_run(run, status="completed", counts={"no_fault": 2})


def test_already_resolved_is_told_apart_from_refused_as_designed(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    _no_fault_journal(journal)
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[journal]\npath = "{journal}"\n[sandbox]\nembedded = true\n', encoding="utf-8"
    )
    base = ("--config", str(config))

    text = " ".join(_ok(cli(*base, "report")).split())
    assert "already resolved 1, refused as designed 1" in text
    refused = text.index("Refused as designed (1)")
    resolved = text.index("Already resolved (1)")
    assert resolved < text.index("(d-2)") < refused < text.index("(d-1)")

    markdown = re.sub(r"\\(.)", r"\1", _ok(cli(*base, "report", "--format", "markdown")))
    assert "## Already resolved (1)" in markdown
    assert "## Refused as designed (1)" in markdown

    data = json.loads(_ok(cli(*base, "report", "--format", "json")))
    codes = {p["subject"]["door_id"]: p["reason_code"] for p in data["sections"]["no_fault"]}
    assert codes == {"d-1": "refused_as_designed", "d-2": "already_resolved"}
    assert data["counts"] == {"no_fault": 2}
    assert data["counts_by_reason"] == {"already_resolved": 1, "refused_as_designed": 1}

    history = json.loads(_ok(cli(*base, "history", "--door", "d-2", "--format", "json")))
    assert history["incidents"][0]["reason_code"] == "already_resolved"
    assert "refused as designed" not in _ok(cli(*base, "history", "--door", "d-2")).lower()


def test_a_failed_run_never_says_nothing_found(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    url = f"http://127.0.0.1:{dead}"
    http = "retry_attempts = 1\ntimeout_seconds = 2\n"
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[cloud]\nbase_url = "{url}/cloud"\n{http}[aca]\nbase_url = "{url}/aca"\n{http}'
        f'[clp]\nbase_url = "{url}/clp"\nidentity_url = "{url}/clp-identity"\n{http}'
        f'[journal]\npath = "{tmp_path / "journal.sqlite3"}"\n',
        encoding="utf-8",
    )
    result = cli("--config", str(config), "run", "door-logs")
    assert result.returncode == 1, result.stderr
    header = result.stdout.splitlines()[0]
    assert "nothing found" not in result.stdout
    assert "FAILED" in header
    report = _ok(cli("--config", str(config), "report"))
    assert "nothing found" not in report
    assert "1 run(s) FAILED" in " ".join(report.splitlines()[1:3])
