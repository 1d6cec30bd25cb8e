"""Issue 16, problem 9, in Chromium: the live view says who is taking the exam now — each open
attempt's student, attempt number, start, progress, score, last save and whether a window is
connected — and follows a student answering in their page without a reload, on a 24-hour clock,
in a table that fits a phone."""

import re
from pathlib import Path

import pytest

from tests.support.attempt_page import answer, launch_instructor, launch_student, start_attempt, wait_saved
from tests.support.widths import DESKTOP, SIZES, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 20000
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def cell_is(page, row, test_id, pattern):
    """Wait until the row's cell matches `pattern` (a regular expression)."""
    page.wait_for_function(
        """([name, testId, pattern]) => [...document.querySelectorAll('#taking-rows tr')].some(tr =>
             tr.querySelector('.name').textContent === name
             && new RegExp(pattern).test(tr.querySelector(`[data-testid="${testId}"]`).textContent))""",
        arg=[row, test_id, pattern], timeout=WAIT_MS)


def test_the_live_view_shows_who_is_taking_the_exam(demo_server, chromium):
    server, viewport = demo_server, DESKTOP
    width = viewport["width"]
    teacher_context = chromium.new_context(viewport=viewport)
    student_context = chromium.new_context(viewport=viewport)
    teacher, student = teacher_context.new_page(), student_context.new_page()
    name = f"Student live-taker-{width}"
    try:
        launch_instructor(teacher, server.url, f"live-taking-teacher-{width}")
        teacher.get_by_test_id("live-link").click()
        teacher.wait_for_function("document.getElementById('live-connection').dataset.state === 'live'",
                                  timeout=WAIT_MS)
        assert name not in teacher.locator("#taking-rows").inner_text()

        launch_student(student, server.url, f"live-taker-{width}")
        exam = start_attempt(student)
        wait_saved(student)
        cell_is(teacher, name, "progress", r"^0 of 2 questions$")
        cell_is(teacher, name, "connected", r"^Connected now$")
        cell_is(teacher, name, "last-saved", r"^\d\d:\d\d$")  # 24-hour clock, no AM/PM

        answer(exam, "q0p0", "4")
        wait_saved(student)
        cell_is(teacher, name, "progress", r"^1 of 2 questions$")
        cell_is(teacher, name, "score", r"^1 / \d+$")
        answer(exam, "q1p0", "13")
        wait_saved(student)
        cell_is(teacher, name, "progress", r"^2 of 2 questions$")

        row = teacher.locator("#taking-rows tr", has=teacher.locator(".name", has_text=name))
        assert re.fullmatch(r"\d\d:\d\d", row.locator("td.started time").inner_text())
        assert row.locator("td.number").first.inner_text() == "1"
        assert not re.search(r"AM|PM", teacher.locator("#live-connection").inner_text())
        assert teacher.locator(".live-taking .table-scroll table").count() == 1
        fits_at_both_widths(teacher, "live view", actions=("[data-testid=overview-link]",))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for size in SIZES:
            teacher.set_viewport_size(size)
            teacher.screenshot(path=str(SCREENSHOTS / f"live-taking-{size['width']}.png"), full_page=True)

        student.close()  # the student's window goes away
        cell_is(teacher, name, "connected", r"^Not connected$")
    finally:
        teacher_context.close()
        student_context.close()
