"""In Chromium: the pages people use pass axe-core's WCAG 2 A and AA checks (no serious or
critical violations), and the students page works from the keyboard.

axe-core comes from node_modules (package.json; scripts/test runs npm ci). The exam inside the
attempt page's iframe is the exam author's (Numbas), not ours: it is left out.
"""

import re
from pathlib import Path

import pytest

from tests.support.attempt_page import launch_instructor, launch_student

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe_problems(page, name: str) -> list[str]:
    """The serious and critical WCAG 2 A/AA violations on the page (and results axe could not
    decide, other than contrast), one line per element."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci` (scripts/test does)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const context = {exclude: [["#exam-frame"]]};
            const options = {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa"]}, resultTypes: ["violations", "incomplete"]};
            const results = await axe.run(context, options);
            // "Needs review" results count too, except contrast (undecidable over gradients and for
            // single symbols): a dangling aria-describedby, for one, is only ever "needs review".
            const review = results.incomplete.filter(v => v.id !== "color-contrast");
            return [...results.violations, ...review].map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
            }));
        }"""
    )
    problems = []
    for violation in result:
        if violation["impact"] in SERIOUS:
            for node in violation["nodes"]:
                problems.append(f"{name}: {violation['id']} ({violation['impact']}): {violation['help']} "
                                f"at {node['target']}\n    {node['summary']}")
    return problems


def resource_id_of(page) -> int:
    return int(re.search(r"/resource/(\d+)/", page.url).group(1))


def test_pages_in_states_the_sweep_does_not_load_pass_axe(demo_server, chromium):
    """Every page students and instructors use passes axe at both widths in
    tests/test_pages_browser.py, loaded by its address. Two states are reached otherwise: the
    student's page before any attempt (a first launch) and the settings form after a refused save."""
    server = demo_server
    problems = []
    student = chromium.new_context().new_page()
    teacher = chromium.new_context().new_page()
    try:
        launch_student(student, server.url, "a11y-student", lis_person_name_full="Alex Student")
        student.get_by_test_id("start-attempt").wait_for()
        problems += axe_problems(student, "student activity page before an attempt")

        launch_instructor(teacher, server.url, "a11y-teacher")
        teacher.locator("#id_max_attempts").fill("-1")  # a form with errors, as the instructor sees it
        teacher.get_by_test_id("save-settings").click()
        teacher.get_by_test_id("settings-field-error").first.wait_for()
        problems += axe_problems(teacher, "instructor page with a settings error")
    finally:
        for page in (student, teacher):
            page.context.close()
    assert not problems, f"{len(problems)} accessibility problem(s):\n" + "\n".join(problems)


def focused(page) -> dict:
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return {tag: e.tagName, id: e.id, testid: e.dataset ? (e.dataset.testid || '') : ''}; }"
    )


def test_students_page_works_from_the_keyboard(demo_server, chromium):
    server = demo_server
    student = chromium.new_context().new_page()
    teacher = chromium.new_context().new_page()
    try:
        launch_student(student, server.url, "a11y-keyboard-student", lis_person_name_full="Kim Keyboard")
        launch_instructor(teacher, server.url, "a11y-keyboard-teacher")
        teacher.goto(f"{server.url}/resource/{resource_id_of(teacher)}/instructor/students/")
        teacher.get_by_test_id("students").wait_for()
        first_sort = teacher.get_by_test_id("students").locator("thead a").first
        first_sort_testid = first_sort.get_attribute("data-testid")

        # Tab from the top of the page: the search field comes before the first sort link.
        teacher.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
        order = []
        for _ in range(30):
            teacher.keyboard.press("Tab")
            now = focused(teacher)
            order.append(now["id"] or now["testid"] or now["tag"])
            if now["testid"] == first_sort_testid:
                break
        assert "student-q" in order, f"Tab never reached the search field: {order}"
        assert order[-1] == first_sort_testid, f"Tab never reached the first sort link: {order}"
        assert order.index("student-q") < len(order) - 1

        # Enter on the sort link sorts by that column.
        before = teacher.url
        teacher.keyboard.press("Enter")
        teacher.wait_for_url(lambda url: url != before and "sort=" in url)
        teacher.get_by_test_id("students").wait_for()
        header = teacher.get_by_test_id("students").locator("thead th").nth(1)  # after the "choose" column
        assert header.get_attribute("aria-sort") in ("ascending", "descending")
        assert teacher.get_by_test_id("student-row").count() >= 2
    finally:
        student.context.close()
        teacher.context.close()
