"""Who may see the statistics page, what it shows, bad input, and that its cost in queries
does not depend on how many students there are."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from attempts.tests.factories import launch, with_exam
from insights.tests.conftest import make_attempt, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(consumer):
    student = launch(consumer, user_id="s1")
    resource = student.membership.resource
    with_exam(resource)
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    other = launch(consumer, user_id="t2", roles="Instructor", resource_link_id="other", context_id="other")
    return {"resource": resource, "instructor": instructor, "other": other, "student": student, "anonymous": Client()}


def url(resource):
    return f"/resource/{resource.pk}/instructor/statistics/"


@pytest.mark.parametrize("who, status", [("anonymous", 401), ("student", 403), ("other", 403)])
def test_only_the_resources_instructors_may_see_statistics(course, who, status):
    response = course[who].get(url(course["resource"]))
    assert response.status_code == status
    assert b"histogram" not in response.content


def test_the_instructor_page_links_to_statistics(course):
    page = course["instructor"].get(f"/resource/{course['resource'].pk}/instructor/")
    assert url(course["resource"]).encode() in page.content


def _add_scored_students(resource, count, start=0):
    exam = resource.exam_packages.get()
    for i in range(start, start + count):
        user = make_user(f"bulk-{i}", resource)
        scaled = (i % 10) / 10 + 0.05  # with the raw score out of the demo exam's 4 marks, as Numbas reports it
        make_attempt(resource, exam, user, scaled=scaled, raw=scaled * 4, max_=4, ended=None,
                     objectives=[("q0", i % 3, 2), ("q1", 1, 2)])


def test_the_page_draws_the_figures(course):
    resource = course["resource"]
    _add_scored_students(resource, 3)  # 5 %, 15 %, 25 %
    response = course["instructor"].get(url(resource))
    assert response.status_code == 200
    html = response.content.decode()
    bars = re.findall(r'<rect class="bar"[^>]*data-label="([^"]+)" data-value="([^"]+)"', html)
    histogram = bars[:10]
    assert histogram[:3] == [("0–10%", "1"), ("10–20%", "1"), ("20–30%", "1")]
    assert {value for _, value in histogram[3:]} == {"0"}
    assert html.count('role="img"') == 2  # histogram and questions: nothing has finished yet
    assert "No attempt has finished yet." in html
    assert 'aria-label="Score histogram of 3 completed attempts' in html
    assert re.search(r'data-testid="question-q0"><th scope="row">[^<]+</th>\s*<td class="number">50.0%', html)
    assert "<figcaption>" in html and "<details" in html


@pytest.mark.parametrize("query", ["?all=banana", "?all=2", "?all=1&all=0x"])
def test_a_filter_the_page_does_not_offer_is_a_clear_400(course, query):
    response = course["instructor"].get(url(course["resource"]) + query)
    assert response.status_code == 400
    assert b'data-testid="filter-error"' in response.content
    assert b'id="count-completed" name="all" value="0" checked' in response.content


@pytest.mark.parametrize("query, checked", [("?all=1", "count-all"), ("?all=0", "count-completed"),
                                            ("", "count-completed"), ("?all=", "count-completed")])
def test_the_filter_choice_is_kept(course, query, checked):
    response = course["instructor"].get(url(course["resource"]) + query)
    assert response.status_code == 200
    assert re.search(rf'id="{checked}" name="all" value="[01]" checked', response.content.decode())


def test_queries_do_not_grow_with_the_number_of_students(course):
    resource, client = course["resource"], course["instructor"]
    _add_scored_students(resource, 2)
    client.get(url(resource))  # session and caches warm
    with CaptureQueriesContext(connection) as small:
        assert client.get(url(resource)).status_code == 200
    _add_scored_students(resource, 60, start=2)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url(resource) + "?all=1")
        assert response.status_code == 200
    assert "62 scored attempts" in response.content.decode()
    # 22: the page, plus the exam versions' totals, discounts, re-marked attempts' recorded
    # question scores and those grading computes (statistics agree with every other page)
    assert len(large) == len(small) <= 22, [q["sql"][:120] for q in large.captured_queries]
