"""An activity the LMS gave no gradebook column (no outcome service in its launches) is not a
failure: the grades page says so once, calmly, with how to give it one, and does not offer to
report what cannot be reported; the student is told the activity does not send grades. Real
failures are still shown as failures. Grades read as percentages with their decimals."""

import html

import pytest

from attempts.tests.factories import launch
from grading.models import GradeReport, ReportState
from grading.tests.helpers import answer, start, student_with_exam

pytestmark = pytest.mark.django_db

NO_OUTCOME = {"lis_result_sourcedid": None, "lis_outcome_service_url": None}
SAYS_NO_GRADEBOOK = "This activity does not send grades to the LMS (the LMS did not offer a gradebook column for it)."


def student_without_gradebook(consumer, user_id, raw=2, **settings):
    client = launch(consumer, user_id=user_id, **NO_OUTCOME)
    membership = student_with_exam(consumer, user_id=user_id, **settings)  # the exam (same resource)
    launch(consumer, user_id=user_id, **NO_OUTCOME)  # the latest launch is the one that counts
    answer(start(membership), raw, complete=True)
    return client


def grades_page(instructor, resource_id) -> str:
    return html.unescape(instructor.get(f"/resource/{resource_id}/instructor/grades/").content.decode())


def test_an_activity_without_a_gradebook_column_says_so_once_calmly(consumer):
    student = student_without_gradebook(consumer, "s1")
    student_without_gradebook(consumer, "s2", raw=1)
    resource_id = student.membership.resource_id
    assert set(GradeReport.objects.values_list("state", flat=True)) == {ReportState.NO_OUTCOME}
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    page = grades_page(instructor, resource_id)
    assert page.count(SAYS_NO_GRADEBOOK) == 1
    assert "Accept grades from the tool" in page and "assignment with points" in page
    assert 'data-testid="grade-error"' not in page and 'class="error' not in page
    assert "outcome service URL and result id" not in page  # the per-student explanation, on every row
    assert page.count('data-testid="grade-not-sent"') == 2
    assert 'data-testid="resend"' not in page
    button = page[page.index('data-testid="report-all"') - 200:page.index('data-testid="report-all"') + 200]
    assert "disabled" in button and 'aria-describedby="no-gradebook"' in button
    assert "Nothing can be reported until the LMS offers a gradebook column." in page


def test_report_all_says_why_nothing_was_queued(consumer):
    student = student_without_gradebook(consumer, "s1")
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    response = instructor.post(f"/resource/{student.membership.resource_id}/instructor/grades/report-all/",
                               follow=True)
    message = html.unescape(response.content.decode())
    assert "Nothing was queued. 1 grade was not queued: the LMS offered no gradebook column for that student." \
        in message
    assert "0 grades queued" not in message


def test_report_all_counts_what_was_queued_and_what_the_lms_has_already(consumer):
    sent = student_with_exam(consumer, user_id="s1", report_when="manual")
    answer(start(sent), 2, complete=True)
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    url = f"/resource/{sent.resource_id}/instructor/grades/report-all/"
    first = html.unescape(instructor.post(url, follow=True).content.decode())
    assert "1 grade queued for the LMS." in first
    again = html.unescape(instructor.post(url, follow=True).content.decode())
    assert "Nothing was queued. 1 grade is already in the LMS or on its way." in again


def test_the_student_is_told_the_activity_does_not_send_grades(consumer):
    student = student_without_gradebook(consumer, "s1")
    page = html.unescape(student.get(f"/resource/{student.membership.resource_id}/").content.decode())
    assert "This activity does not send grades to your course's gradebook." in page
    assert "could not be sent" not in page


def test_before_grades_are_released_the_student_is_not_promised_a_grade_in_the_gradebook(consumer):
    student = student_without_gradebook(consumer, "s1", report_when="manual")
    assert GradeReport.objects.get().state == ReportState.WAITING
    page = html.unescape(student.get(f"/resource/{student.membership.resource_id}/").content.decode())
    assert "This activity does not send grades to your course's gradebook." in page
    assert "It will be sent to your course's gradebook" not in page


def test_in_a_class_where_only_some_lack_a_column_real_failures_are_still_failures(consumer):
    graded = student_with_exam(consumer, user_id="s1")
    answer(start(graded), 2, complete=True)
    GradeReport.objects.update(state=ReportState.FAILED, last_error="The LMS refused the grade (HTTP 401).")
    student_without_gradebook(consumer, "s2")
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    page = grades_page(instructor, graded.resource_id)
    assert SAYS_NO_GRADEBOOK not in page
    assert "For 1 student the LMS offered no gradebook column at their last launch" in page
    assert page.count('data-testid="grade-error"') == 1  # the refusal, not the missing column
    assert 'data-testid="grade-error">The LMS refused the grade (HTTP 401).' in page
    assert 'data-testid="report-all">' in page  # enabled
    student_page = html.unescape(launch(consumer, user_id="s1").get(f"/resource/{graded.resource_id}/")
                                 .content.decode())
    assert "It could not be sent to your course's gradebook; your instructor can see why." in student_page


def test_grades_are_percentages_with_their_decimals(consumer):
    student = student_with_exam(consumer, user_id="s1")
    answer(start(student), 0.5, 4, complete=True)  # 12.5 %
    GradeReport.objects.update(state=ReportState.DELIVERED, sent_score=0.125, sent_version=1)
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    page = grades_page(instructor, student.resource_id)
    assert "12.5\u00a0%" in page and "12%" not in page and "13%" not in page
