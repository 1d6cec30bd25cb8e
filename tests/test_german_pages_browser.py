"""Problem 16, in Chromium: a student and an instructor launched with launch_presentation_locale=de-DE
read German everywhere — the student page, the attempt page (its save status comes from our
JavaScript's catalogue, /jsi18n/), the instructor's overview, students, grades, reports,
statistics and live pages — with no English left but user content (names, titles, the exam).

Passes once app/locale/de is complete and compiled (tests/support/english_left.py explains the check).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support import po
from tests.support.attempt_page import launch_instructor, launch_student, start_attempt, wait_saved
from tests.support.english_left import catalogue, english_left, english_pieces

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP_DIR = Path(__file__).resolve().parent.parent / "app"
USER_CONTENT = ["Demo exam", "Demo course", "DEMO101", "Arithmetic", "Primes", "Numbas LTI Provider",
                "Anna Schmidt", "Ilse Lehmann"]
INSTRUCTOR_PAGES = {"overview": "", "students": "students/", "grades": "grades/", "reports": "reports/",
                    "statistics": "statistics/", "live": "live/"}


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    if shutil.which("xgettext") is None:
        pytest.skip("needs GNU gettext (scripts/test installs it with apt)")
    work = tmp_path_factory.mktemp("extraction")
    entries = [e for domain in ("django", "djangojs") for e in po.read(po.extract(APP_DIR, work, domain))[1]]
    translations = catalogue("de", "django", APP_DIR) + catalogue("de", "djangojs", APP_DIR)
    return english_pieces(entries, translations)


def seen_text(page) -> str:
    """What a person reads or hears: the rendered text, the title, and titles, labels, placeholders
    and alt texts (the exam's own iframe is the exam author's and left out)."""
    return page.evaluate("""() => {
        const attrs = [...document.querySelectorAll('[title],[aria-label],[placeholder],[alt]')]
            .flatMap(el => ['title', 'aria-label', 'placeholder', 'alt'].map(a => el.getAttribute(a) || ''));
        return [document.title, document.body.innerText, ...attrs].join('\\n');
    }""")


def test_german_launch_pages_have_no_english_left(demo_server, page, english):
    page.set_viewport_size({"width": 1280, "height": 800})
    problems = []

    def check(what):
        assert page.evaluate("document.documentElement.lang") == "de", f"{what}: <html lang> is not de"
        found = english_left(seen_text(page), english, user_content=USER_CONTENT)
        if found:
            problems.append(f"{what} ({page.url}): {len(found)} English strings left:\n    " + "\n    ".join(found[:25]))

    launch_student(page, demo_server.url, "de-browser-s", launch_presentation_locale="de-DE",
                   lis_person_name_full="Anna Schmidt")
    check("student page")
    start_attempt(page)
    wait_saved(page)
    check("attempt page")

    launch_instructor(page, demo_server.url, "de-browser-i", launch_presentation_locale="de-DE",
                      lis_person_name_full="Ilse Lehmann")
    base = re.match(r"^(.*/resource/\d+/instructor/)", page.url).group(1)
    for what, path in INSTRUCTOR_PAGES.items():
        page.goto(base + path)
        page.wait_for_load_state("load")
        if what == "live":
            page.wait_for_function("document.getElementById('live-connection').dataset.state === 'live'",
                                   timeout=15000)
        check(what)
    assert not problems, "German pages with English left (translate them in app/locale/de, then " \
                         "scripts/messages compile):\n" + "\n".join(problems)


def test_the_language_switch_works_from_the_keyboard_inside_the_page(demo_server, page):
    """Launched in German, the student picks Español with the keyboard: the page comes back in
    Spanish (<html lang="es">), and stays so on the next page."""
    page.set_viewport_size({"width": 390, "height": 844})
    launch_student(page, demo_server.url, "de-browser-switch", launch_presentation_locale="de-DE")
    assert page.evaluate("document.documentElement.lang") == "de"
    select = page.locator("#language-switch-select")
    assert select.evaluate("el => el.labels.length") == 1
    assert page.locator("#language-switch-select option[lang=es]").inner_text() == "Español"
    select.focus()
    select.select_option("es")
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.get_by_test_id("student-page").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the switch widens the page"
    page.reload()
    assert page.evaluate("document.documentElement.lang") == "es"


def test_the_exam_frame_on_the_content_origin_follows_the_attempts_language(demo_server, page):
    """The runtime frame (exam-content origin, no cookies of ours) takes the attempt page's language
    and names the exam's frame in it, for screen readers."""
    from tests.support.attempt_page import runtime_frame

    launch_student(page, demo_server.url, "de-browser-frame", launch_presentation_locale="de-DE")
    start_attempt(page)
    frame = runtime_frame(page)
    assert frame.evaluate("document.documentElement.lang") == "de"
    name = page.evaluate("gettext('Exam')")
    assert frame.evaluate("document.title") == name
    assert frame.evaluate("document.getElementById('exam').title") == name
