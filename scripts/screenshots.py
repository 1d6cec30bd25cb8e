"""Helper of scripts/screenshots: start a live server with the demo data, make an attempt, and save
PNGs of the main pages at both widths."""

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "app"), str(REPO / "infra")]

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support.attempt_page import (DEMO_SECRET, answer, answer_and_end, launch_instructor,  # noqa: E402
                                        launch_student, start_attempt, wait_saved)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.live import start_live_server  # noqa: E402

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO / "test-artifacts" / "screenshots"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="numbas-screenshots-") as tmp:
        print("Starting a live server…", flush=True)
        server = start_live_server(Path(tmp))
        try:
            server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    shots = take(browser, server, out)
                finally:
                    browser.close()
        finally:
            server.stop()
    print(f"{shots} screenshots in {out}")
    return 0


def take(browser, server, out: Path) -> int:
    # A student who ended an attempt, one in the middle of one, and the instructor.
    done = browser.new_context().new_page()
    launch_student(done, server.url, "shots-done", lis_person_name_full="Dana Done")
    student_url = done.url.split("?", 1)[0]
    answer_and_end(done, start_attempt(done))
    review_url = done.url
    running = browser.new_context().new_page()
    launch_student(running, server.url, "shots-running", lis_person_name_full="Riley Running")
    answer(start_attempt(running), "q0p0", "4")
    wait_saved(running)
    attempt_url = running.url
    running_state = running.context.storage_state()
    running.context.close()
    teacher = browser.new_context().new_page()
    launch_instructor(teacher, server.url, "shots-teacher")
    overview = teacher.url.split("?", 1)[0]
    resource = re.search(r"/resource/(\d+)/", overview).group(1)
    teacher.goto(overview + "students/")
    teacher.get_by_test_id("student-row").filter(has_text="Dana Done").locator("a[href*='/students/']").first.click()
    teacher.get_by_test_id("person").wait_for()
    person_url = teacher.url
    teacher.get_by_test_id("attempt-link-1").click()
    teacher.get_by_test_id("attempt-summary").wait_for()
    attempt_admin_url = teacher.url

    states = {"done": done.context.storage_state(), "running": running_state,
              "teacher": teacher.context.storage_state()}
    pages = [
        ("student", "running", student_url), ("attempt", "running", attempt_url), ("review", "done", review_url),
        ("overview", "teacher", overview), ("students", "teacher", overview + "students/"),
        ("student-detail", "teacher", person_url), ("attempt-detail", "teacher", attempt_admin_url),
        ("grades", "teacher", overview + "grades/"), ("reports", "teacher", overview + "reports/"),
        ("statistics", "teacher", overview + "statistics/"), ("live", "teacher", overview + "live/"),
        ("remark", "teacher", overview + "remark/"),
        ("test-runs", "teacher", f"{server.url}/resource/{resource}/test-runs/"),
        ("not-found", "teacher", f"{server.url}/no-such-page/"),
    ]
    count = 0
    for width, (w, h) in WIDTHS.items():
        for name, who, url in pages:
            context = browser.new_context(viewport={"width": w, "height": h}, storage_state=states[who])
            page = context.new_page()
            try:
                page.goto(url)
                page.wait_for_load_state("networkidle", timeout=15000)
                path = out / f"{name}-{width}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"  {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)
                count += 1
            except Exception as error:  # one page's trouble should not lose the others
                print(f"  {name} ({width}): {str(error).splitlines()[0]}", file=sys.stderr)
            finally:
                context.close()
    for page in (done, teacher):
        page.context.close()
    return count


if __name__ == "__main__":
    sys.exit(main())
