"""The console in Chromium: every page loads, a person signs in, marks an incident handled,
and the console refuses a write without the approver's token or without its CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.console import APPROVE, DOCS_SHOT, VIEW, DemoConsole

#: the pages and a text each shows once the demo has found something
PAGES = (
    ("now", "/", "aca-rejections"),
    ("needs-a-person", "/needs-a-person", "On-site staff"),
    ("incidents", "/incidents", "aca.lock_offline"),
    ("history", "/history?center_id=c-1", "History of center c-1"),
)


def _sign_in(page: Any, url: str, token: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", token)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login" not in page.url, page.content()


def _until_needs_a_person(page: Any, url: str) -> None:
    """Reload *Needs a person* until the demo's first needs_human incidents are there."""
    for _ in range(100):
        page.goto(f"{url}/needs-a-person")
        if page.locator("article.incident").count() >= 2:
            return
        page.wait_for_timeout(200)
    raise AssertionError("the demo never showed an incident that needs a person")


def test_each_page_loads_in_a_real_browser_with_no_csp_violation(
    demo_console: DemoConsole, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(demo_console.url + "/")
    assert "/login" in page.url  # a view token is set: reading needs it
    _sign_in(page, demo_console.url, VIEW, "Vera")
    _until_needs_a_person(page, demo_console.url)
    for name, path, text in PAGES:
        answer = page.goto(demo_console.url + path)
        assert answer is not None
        assert answer.status == 200, path
        assert text in page.content(), path
        page.screenshot(path=str(tmp_path / f"console-{name}.png"), full_page=True)
        if name == "needs-a-person":
            page.screenshot(path=str(DOCS_SHOT))  # the first screenful, for the README
    # a viewer sees no form that writes
    page.goto(demo_console.url + "/needs-a-person")
    assert page.locator("form.handle").count() == 0
    answer = page.goto(demo_console.url + "/incidents/no-such-incident")
    assert answer is not None
    assert answer.status == 404
    assert "no incident no-such-incident" in page.content()
    page.screenshot(path=str(tmp_path / "console-404.png"))
    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert all((tmp_path / f"console-{name}.png").stat().st_size > 10_000 for name, *_ in PAGES)


def test_an_approver_marks_an_incident_handled_and_it_is_recorded(
    demo_console: DemoConsole, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, demo_console.url, APPROVE, "Dana")
    _until_needs_a_person(page, demo_console.url)
    card = page.locator("article.incident").first
    incident_id = (card.get_attribute("id") or "").removeprefix("incident-")
    card.locator("input[name=note]").fill("Power-cycled the IQ <b>on site</b>")
    with page.expect_navigation():
        card.locator("button[type=submit]").click()
    assert page.url == f"{demo_console.url}/needs-a-person"
    assert page.locator(f"#incident-{incident_id}").count() == 0
    page.screenshot(path=str(tmp_path / "console-after-handled.png"), full_page=True)
    page.goto(f"{demo_console.url}/incidents/{incident_id}")
    mark = page.locator("#history li.mark")
    assert mark.inner_text().endswith("by Dana: Power-cycled the IQ <b>on site</b>")
    page.screenshot(path=str(tmp_path / "console-incident.png"), full_page=True)


def test_writes_without_the_approver_token_or_the_csrf_token_are_refused(
    demo_console: DemoConsole, browser: Any
) -> None:
    approver = browser.new_page()
    _sign_in(approver, demo_console.url, APPROVE, "Dana")
    _until_needs_a_person(approver, demo_console.url)
    incident_id = (
        approver.locator("article.incident").first.get_attribute("id") or ""
    ).removeprefix("incident-")
    target = f"{demo_console.url}/incidents/{incident_id}/handled"

    # the approver's own session, the form posted without its CSRF token
    forged = approver.request.post(target, form={"note": "no csrf"}, max_redirects=0)
    assert forged.status == 403
    assert "CSRF" in forged.text()

    # a viewer's session, with the viewer's own CSRF-less form: no approver token
    viewer = browser.new_page()
    _sign_in(viewer, demo_console.url, VIEW, "Vera")
    as_viewer = viewer.request.post(target, form={"note": "viewer"}, max_redirects=0)
    assert as_viewer.status == 403
    assert "approver" in as_viewer.text()

    approver.goto(f"{demo_console.url}/incidents/{incident_id}")
    assert approver.locator("#history li.mark").count() == 0
    assert approver.locator("form.handle").count() == 1


def _until(page: Any, url: str, selector: str, *, count: int = 1, text: str = "") -> Any:
    """Reload ``url`` until ``selector`` matches ``count`` elements (holding ``text``)."""
    for _ in range(150):
        page.goto(url)
        found = page.locator(selector)
        if found.count() >= count and (not text or text in found.first.inner_text()):
            return found
        page.wait_for_timeout(200)
    raise AssertionError(f"{url} never showed {selector} {text!r}")


def test_an_approved_renewal_runs_and_is_verified_a_refused_one_never_runs(
    demo_console: DemoConsole, browser: Any, tmp_path: Path
) -> None:
    url = demo_console.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, url, APPROVE, "Dana")
    cards = _until(page, f"{url}/approvals", "article.approval", count=2)
    page.screenshot(path=str(tmp_path / "console-approvals.png"), full_page=True)
    # two waiting renewals of different doors (a door may wait twice: a scan and a refusal)
    by_target: dict[str, Any] = {}
    for n in range(cards.count()):
        by_target.setdefault(cards.nth(n).locator("h3").inner_text(), cards.nth(n))
    assert len(by_target) >= 2, list(by_target)
    first, second = list(by_target.values())[:2]
    approved_id = (first.get_attribute("id") or "").removeprefix("approval-")
    refused_id = (second.get_attribute("id") or "").removeprefix("approval-")
    approved_incident = first.locator("a").first.get_attribute("href")
    refused_incident = second.locator("a").first.get_attribute("href")

    second.locator("form.refuse input[name=note]").fill("door is being retired")
    with page.expect_navigation():
        second.locator("form.refuse button").click()
    assert page.url == f"{url}/approvals"
    decided = page.locator(f"#decided-{refused_id}").inner_text()
    assert "refused" in decided
    assert "Dana" in decided
    assert "door is being retired" in decided
    approving = page.locator(f"#approval-{approved_id}")  # the page reloaded: find it by id
    approving.locator("form.approve input[name=note]").fill("budget ok")
    with page.expect_navigation():
        approving.locator("form.approve button").click()
    assert page.url == f"{url}/approvals"

    # the next runs diagnose both again: the approved one runs and is verified
    _until(page, f"{url}{approved_incident}", "#outcome", text="fixed")
    assert "succeeded" in page.locator("#actions").inner_text()
    history = page.locator("#history").inner_text()
    assert f"{approved_id} of renew_license" in history
    assert "ran by Dana: budget ok" in history
    page.screenshot(path=str(tmp_path / "console-approved-incident.png"), full_page=True)
    # the refused one never runs: a person is told who refused and why
    _until(page, f"{url}{refused_incident}", "#outcome", text="needs_human")
    assert "Dana refused doorfix's renew_license" in page.content()
    assert "door is being retired" in page.content()
    assert "succeeded" not in page.locator("#actions").inner_text()

    # deciding again says what happened
    page.goto(f"{url}/needs-a-person")  # a page with a form: the session's CSRF token
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    again = page.request.post(
        f"{url}/approvals/{approved_id}/approve", form={"csrf": csrf}, max_redirects=0
    )
    assert again.status == 409
    assert "already ran" in again.text()
    missing = page.request.post(
        f"{url}/approvals/nope/approve", form={"csrf": csrf}, max_redirects=0
    )
    assert missing.status == 404
