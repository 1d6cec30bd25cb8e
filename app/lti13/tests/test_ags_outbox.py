"""Grades of students launched with LTI 1.3 reach the stand-in platform's gradebook through
AGS, by the same outbox as LTI 1.1 (retries, delivery status, errors for instructors)."""

import pytest

from grading import services
from grading.models import GradeReport, ReportState
from grading.tests.helpers import answer, start
from attempts.tests.factories import with_exam
from lms.models import ResourceMembership
from lti13.tests.helpers import launch, register
from tests.support.lti13_platform import ROLE_INSTRUCTOR, ROLE_LEARNER, SCOPE_LINEITEM, SCOPE_SCORE, Lti13Platform

pytestmark = pytest.mark.django_db
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"


@pytest.fixture
def lms():
    with Lti13Platform(client_id="tool-1", deployment_id="dep-1") as platform:
        platform.add_context("course-7", title="Algebra 1")
        yield platform


@pytest.fixture
def platform(lms):
    return register(lms)


def launched(client, lms, sub, **kwargs):
    response = launch(client, lms, sub=sub, roles=[ROLE_LEARNER], name=f"Student {sub}",
                      context={"id": "course-7", "title": "Algebra 1"},
                      resource_link={"id": "link-1", "title": "Week 1 quiz"}, **kwargs)
    assert response.status_code == 302, response.content[:1000]
    membership = ResourceMembership.objects.get(user__lti_identity__sub=sub)
    if not membership.resource.exam_packages.exists():
        with_exam(membership.resource, max_attempts=0)
    return membership


def complete(membership, raw, max_=4):
    answer(start(membership), raw, max_, complete=True)
    report = GradeReport.objects.get(membership=membership)
    assert report.state == ReportState.PENDING
    return report


def test_a_completed_attempt_sends_its_score_to_the_launch_line_item(client, lms, platform):
    membership = launched(client, lms, "stu-1", ags=True)
    report = complete(membership, 3)
    stats = services.passback_deliver_due(wait_for_retries=False)
    assert stats.delivered == 1
    record = lms.wait_for_score("stu-1", timeout=5)
    assert record.lineitem_url == membership.ags_lineitem_url
    assert record.score["scoreGiven"] == 3 and record.score["scoreMaximum"] == 4
    assert record.score["activityProgress"] == "Completed" and record.score["gradingProgress"] == "FullyGraded"
    assert record.score["timestamp"].endswith("+00:00")
    assert record.headers["Content-Type"] == SCORE_MEDIA_TYPE and record.headers["Authorization"].startswith("Bearer ")
    report.refresh_from_db()
    assert report.state == ReportState.DELIVERED and report.sent_score == 0.75
    # the access token is reused for the next student's score (cached until it expires)
    complete(launched(client, lms, "stu-2", ags=True), 4)
    assert services.passback_deliver_due(wait_for_retries=False).delivered == 1
    assert lms.wait_for_score("stu-2", timeout=5).score["scoreGiven"] == 4
    assert lms.tokens_issued == 1


def test_without_a_line_item_in_the_launch_the_tool_creates_one_and_finds_it_again(client, lms, platform):
    claim = lms.ags_claim("course-7", scopes=[SCOPE_SCORE, SCOPE_LINEITEM])
    first = launched(client, lms, "stu-1", ags=claim)
    assert first.ags_lineitem_url == "" and lms.lineitems("course-7") == []
    complete(first, 2)
    assert services.passback_deliver_due(wait_for_retries=False).delivered == 1
    [column] = lms.lineitems("course-7")
    assert column["scoreMaximum"] == 4 and column["label"] == "Week 1 quiz"
    assert column["resourceLinkId"] == "link-1" and column["tag"] == "numbas-lti"
    first.resource.refresh_from_db()
    assert first.resource.ags_lineitem_url == column["id"]
    complete(launched(client, lms, "stu-2", ags=claim), 1)
    assert services.passback_deliver_due(wait_for_retries=False).delivered == 1
    assert len(lms.lineitems("course-7")) == 1
    assert {r.user_id for r in lms.scores if r.lineitem_url == column["id"]} == {"stu-1", "stu-2"}


def test_a_platform_that_is_down_gets_the_grade_later_and_a_refusal_is_shown_to_instructors(client, lms, platform):
    membership = launched(client, lms, "stu-1", ags=True)
    report = complete(membership, 3)
    lms.fail("503", count=1)
    stats = services.passback_deliver_due(wait_for_retries=False)
    assert stats.retrying == 1
    report.refresh_from_db()
    assert report.state == ReportState.PENDING and report.failures == 1 and "503" in report.last_error
    GradeReport.objects.filter(pk=report.pk).update(due_at=report.updated_at)  # its retry is due
    assert services.passback_deliver_due(wait_for_retries=False).delivered == 1
    # a platform that refuses the tool's token: failed, for a person to see and re-send
    other = launched(client, lms, "stu-2", ags=True)
    complete(other, 1)
    lms.fail("401", count=5, on=["scores", "token"])
    assert services.passback_deliver_due(wait_for_retries=False).failed == 1
    failed = GradeReport.objects.get(membership=other)
    assert failed.state == ReportState.FAILED and failed.last_error
    teacher = launch(client, lms, sub="t-1", roles=[ROLE_INSTRUCTOR], context={"id": "course-7"},
                     resource_link={"id": "link-1", "title": "Week 1 quiz"})
    assert teacher.status_code == 302
    page = client.get(f"/resource/{membership.resource_id}/instructor/grades/")
    assert page.status_code == 200
    assert failed.last_error[:60].encode() in page.content.replace(b"&#x27;", b"'").replace(b"&quot;", b'"')


def test_a_launch_without_the_score_scope_has_no_gradebook_entry(client, lms, platform):
    membership = launched(client, lms, "stu-1", ags=lms.ags_claim("course-7", scopes=[SCOPE_LINEITEM]))
    answer(start(membership), 3, 4, complete=True)
    report = GradeReport.objects.get(membership=membership)
    assert report.state == ReportState.NO_OUTCOME and "Assignment and Grade Services" in report.last_error


def test_a_rotated_tool_key_signs_token_requests_without_a_failed_send(client, lms, platform):
    """The platform caches the tool's keyset; when a new tool key starts signing, the platform
    meets an unknown kid, fetches the keyset again (published there since the rotation) and goes on."""
    from datetime import timedelta

    from django.core.cache import cache

    from lti13 import keys
    from lti13.tests.helpers import LAUNCH_URL, LOGIN_URL

    published = {"jwks": keys.jwks()}
    lms.register_tool(login_url=LOGIN_URL, redirect_uris=[LAUNCH_URL], client_id="tool-1", deployment_ids=["dep-1"],
                      jwks_url="http://testserver/lti13/jwks/")
    lms.jwks_fetcher = lambda url: published["jwks"]  # what GET /lti13/jwks/ answers now (the test's database)
    complete(launched(client, lms, "stu-1", ags=True), 3)
    assert services.passback_deliver_due(wait_for_retries=False).delivered == 1
    old = keys.signing_key()
    new, _ = keys.key_rotate(publish_ahead=timedelta(0), keep_after=timedelta(hours=1))
    assert keys.signing_key() == new != old
    published["jwks"] = keys.jwks()
    assert {k["kid"] for k in published["jwks"]["keys"]} == {old.kid, new.kid}
    lms.expire_tokens()
    cache.clear()  # the tool asks for a new token: signed with the new key
    complete(launched(client, lms, "stu-2", ags=True), 4)
    stats = services.passback_deliver_due(wait_for_retries=False)
    assert (stats.delivered, stats.failed, stats.retrying) == (1, 0, 0)
    assert lms.wait_for_score("stu-2", timeout=5).score["scoreGiven"] == 4
    assert lms.tool_jwks_fetches == 2  # once at first, once for the new kid
