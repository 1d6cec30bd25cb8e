"""An instructor asks for the scores CSV in Chromium, watches it being written by a Huey
worker, and downloads it."""

import csv
import io
import re

import pytest
import requests

from tests.support.attempt_client import Student
from tests.support.attempt_page import DEMO_SECRET, launch_instructor
from tests.support.live import start_live_server, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def reports_server(tmp_path_factory):
    """A daphne of its own whose Huey queue is a SQLite file of its own (REDIS_URL empty), so the
    worker this test starts serves this server only, never another test's shared Redis queue."""
    server = start_live_server(tmp_path_factory.mktemp("reports"), extra_env={"REDIS_URL": ""})
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    yield server
    server.stop()


def test_instructor_downloads_the_scores_csv(reports_server, page, tmp_path):
    server = reports_server
    Student(server.url, key="demo", secret=DEMO_SECRET, user_id="stu-reports").launch().start_attempt()

    launch_instructor(page, server.url, "teacher-reports")
    resource_id = re.search(r"/resource/(\d+)/instructor/", page.url).group(1)

    page.goto(f"{server.url}/resource/{resource_id}/instructor/reports/")
    page.get_by_test_id("no-reports").wait_for(timeout=10000)
    with page.expect_navigation(timeout=15000):
        page.get_by_role("button", name="Scores CSV").click()
    # No worker yet: the report waits in the queue with its progress bar.
    row = page.get_by_test_id("report-row")
    assert row.get_attribute("data-state") == "queued"
    assert page.get_by_test_id("report-progress").is_visible()

    worker = server.start_worker(tmp_path / "huey.log")
    try:
        page.get_by_test_id("report-download").wait_for(timeout=30000)  # the page polls and swaps the link in
    except Exception as error:
        raise AssertionError(f"no download link: {error}\n--- huey log:\n{(tmp_path / 'huey.log').read_text()}")
    finally:
        stop_process(worker)
    assert row.get_attribute("data-state") == "done"
    assert page.get_by_test_id("report-progress").count() == 0

    with page.expect_download(timeout=15000) as info:
        page.get_by_test_id("report-download").click()
    download = info.value
    assert re.fullmatch(r"week-1-quiz-scores-\d{8}-\d{4}\.csv", download.suggested_filename), download.suggested_filename
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert rows[0] == ["name", "identifier", "email", "lms_user_id", "attempts", "grade", "grade_percent", "counted_attempt",
                       "reported_to_lms", "reported_score", "reported_at"]
    assert [r[3:5] for r in rows[1:]] == [["stu-reports", "1"]]

    # The file has no public URL, and the download URL needs the instructor's session.
    report_id = row.get_attribute("data-report")
    download_path = f"/resource/{resource_id}/instructor/reports/{report_id}/download/"
    for path, refusals in [(f"/media/reports/{report_id}.csv", {404}), (f"/media/private/reports/{report_id}.csv", {404}),
                           (f"/media/exams/..%2F..%2Fprivate%2Freports%2F{report_id}.csv", {400, 404}),
                           (download_path, {401})]:
        response = requests.get(server.url + path, timeout=10, allow_redirects=False)
        assert response.status_code in refusals, (path, response.status_code)
        assert "lms_user_id" not in response.text
