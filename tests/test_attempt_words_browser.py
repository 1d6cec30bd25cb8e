"""In Chromium at 1280×800 and 390×844: the instructor's attempt page in plain words (issue 16,
problems 5 and 6). Question and part names instead of SCORM ids, a human status, a timeline of
one line per event that never widens the page (a long answer wraps), the raw SCORM data one
click away, "the attempt as it was" as questions and answers, a labelled and pre-filled
re-mark form, deleting that asks first, and the review saying whose attempt it is."""

import re

import pytest

from tests.support.attempt_page import answer_and_end, launch_instructor, launch_student, start_attempt
from tests.test_accessibility import axe_problems

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
LONG_ANSWER = "1234567890" * 8  # one long word, wrong for "Primes"


def no_overflow(page, width):
    widest = page.evaluate("""(width) => [...document.querySelectorAll('body *')]
        .filter(e => !e.closest('.table-scroll') && e.getBoundingClientRect().right > width + 0.5)
        .map(e => e.tagName + '.' + e.className + '#' + (e.dataset.testid || '') + ' ' + Math.round(e.getBoundingClientRect().right))
        .slice(0, 8)""", width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"wider than the window: {widest}"


def test_the_attempt_page_in_plain_words_at_both_sizes(demo_server, chromium, page):
    server = demo_server
    launch_student(page, server.url, "words-student", lis_person_name_full="Wanda Words",
                   lis_person_contact_email_primary="wanda@example.edu")
    exam = start_attempt(page)
    answer_and_end(page, exam, {"q0p0": "4", "q0p1": "42", "q1p0": LONG_ANSWER})

    teacher = chromium.new_context(viewport=SIZES["desktop"]).new_page()
    try:
        launch_instructor(teacher, server.url, "words-teacher")
        teacher.get_by_test_id("students-link").click()
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill("Wanda")
        teacher.get_by_role("button", name="Search").click()
        teacher.get_by_role("link", name="Wanda Words").click()
        teacher.get_by_test_id("attempt-link-1").click()
        attempt_url = teacher.url.split("?")[0].split("#")[0]
        problems = []
        for name, size in SIZES.items():
            teacher.set_viewport_size(size)
            teacher.goto(attempt_url)
            assert "Finished" in teacher.get_by_test_id("attempt-state").inner_text()
            assert "50\u00a0%" in teacher.get_by_test_id("attempt-score").inner_text()
            marks = teacher.get_by_test_id("marks").inner_text()
            assert "Question 1: Arithmetic" in marks and "Question 2: Primes" in marks
            assert not re.search(r"\bq\d+p?\d*\b", teacher.locator("main").inner_text()), "SCORM ids shown"
            story = teacher.get_by_test_id("story")
            text = story.inner_text()
            assert "Exam started" in text and "Question 1: Arithmetic, part b: answered 42 — 1/1 mark" in text
            assert "Exam ended — 2/4 marks" in text and "cmi." not in text
            no_overflow(teacher, size["width"])
            box = story.bounding_box()
            assert box["x"] + box["width"] <= size["width"], "the timeline is wider than the window"
            # The raw data: one click away, and it scrolls inside its own box.
            raw = teacher.get_by_test_id("raw-data")
            assert not raw.get_by_test_id("timeline").is_visible()
            raw.locator("summary").click()
            assert "learner_response" in raw.get_by_test_id("timeline").inner_text()
            no_overflow(teacher, size["width"])
            # The attempt as it was, at the second answer: questions, answers and marks.
            story.locator("li", has_text="part b: answered 42").get_by_role(
                "link", name="the attempt at this moment").click()
            state = teacher.get_by_test_id("as-at")
            assert "42" in state.inner_text() and "Question 2: Primes" in state.inner_text()
            no_overflow(teacher, size["width"])
            # The re-mark form: labelled, with the current mark in it.
            teacher.get_by_test_id("part-q1p0").locator("summary").click()
            mark = teacher.get_by_label("New mark for Question 2: Primes, part a (out of 2)")
            assert mark.input_value() == "0" and mark.is_visible()
            no_overflow(teacher, size["width"])
            problems += axe_problems(teacher, f"attempt page ({name})")
        assert not problems, "\n".join(problems)

        # Deleting asks first, on a phone too: the confirmation's button can be reached.
        teacher.goto(attempt_url)
        teacher.get_by_test_id("delete").click()
        confirm = teacher.get_by_test_id("confirm-button")
        assert "Delete this attempt?" in teacher.locator("h1").inner_text()
        no_overflow(teacher, SIZES["phone"]["width"])
        confirm.click()
        assert "Deleted" in teacher.get_by_test_id("attempt-state").inner_text()
        teacher.get_by_test_id("restore").click()

        # The review says whose attempt it is.
        teacher.goto(server.url + teacher.get_by_test_id("review-link").get_attribute("href"))
        whose = teacher.get_by_test_id("review-whose")
        assert "Reviewing attempt 1 by Wanda Words" in whose.inner_text()
        assert "wanda@example.edu" in whose.inner_text()
        no_overflow(teacher, SIZES["phone"]["width"])
    finally:
        teacher.context.close()
