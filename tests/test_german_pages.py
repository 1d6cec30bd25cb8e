"""Problem 16: a launch with launch_presentation_locale=de-DE shows the student's and the
instructor's pages in German, with no English left but what people wrote themselves (the
activity's and course's titles, names, the exam and its questions).

The English looked for is every string marked in the code (a fresh makemessages), cut into
pieces of two words or more (tests/support/english_left.py). These tests pass once the German
catalogue (app/locale/de) is complete and compiled.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from attempts.tests.factories import launch, with_exam
from grading.tests.helpers import answer, start
from tests.support import po
from tests.support.english_left import catalogue, english_left, english_pieces, visible_text

pytestmark = pytest.mark.django_db

APP_DIR = Path(__file__).resolve().parent.parent / "app"
PEOPLE = {"de-i": ("Ilse Lehmann", "Instructor"), "de-s1": ("Anna Schmidt", "Learner"),
          "de-s2": ("Bernd Krause", "Learner")}
USER_CONTENT = ["Übungsblatt 3", "Zahlentheorie", "ZT1", "Demo exam", "Arithmetic", "Primes",
                *(name for name, _ in PEOPLE.values())]


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    """The English pieces of every string marked in templates and Python."""
    import shutil

    if shutil.which("xgettext") is None:
        pytest.skip("needs GNU gettext (scripts/test installs it with apt)")
    _, entries = po.read(po.extract(APP_DIR, tmp_path_factory.mktemp("extraction"), "django"))
    return english_pieces(entries, catalogue("de", "django", APP_DIR))


@pytest.fixture
def course(consumer):
    """An activity with the demo exam; an instructor and two students, all launched in German; one
    finished attempt and one in progress."""
    clients = {}
    for user_id, (name, roles) in PEOPLE.items():
        clients[user_id] = launch(consumer, user_id=user_id, roles=roles, resource_link_id="de-quiz",
                                  context_id="de-course", launch_presentation_locale="de-DE",
                                  lis_person_name_full=name, resource_link_title="Übungsblatt 3",
                                  context_title="Zahlentheorie", context_label="ZT1")
    resource = clients["de-i"].membership.resource
    with_exam(resource, max_attempts=3)
    done = start(clients["de-s1"].membership)
    answer(done, 3, complete=True, questions=[("q0", 1, 2), ("q1", 2, 2)])
    going = start(clients["de-s2"].membership)
    answer(going, 1, questions=[("q0", 1, 2)])
    clients["resource"], clients["done"] = resource, done
    return clients


def pages(course) -> list[tuple[str, str, str]]:
    """(who, what, address) of the pages checked."""
    rid = course["resource"].pk
    student = course["de-s1"].membership
    return [
        ("de-s1", "student page", reverse("portal:student", kwargs={"resource_id": rid})),
        ("de-s2", "student page with an attempt in progress", reverse("portal:student", kwargs={"resource_id": rid})),
        ("de-i", "instructor overview", reverse("portal:instructor", kwargs={"resource_id": rid})),
        ("de-i", "students", reverse("dashboard:students", kwargs={"resource_id": rid})),
        ("de-i", "a student", reverse("dashboard:student", kwargs={"resource_id": rid, "membership_id": student.pk})),
        ("de-i", "an attempt", reverse("dashboard:attempt", kwargs={"resource_id": rid, "attempt_id": course["done"].pk})),
        ("de-i", "grades", reverse("grading:grades", kwargs={"resource_id": rid})),
        ("de-i", "reports", reverse("reports:list", kwargs={"resource_id": rid})),
        ("de-i", "statistics", reverse("insights:statistics", kwargs={"resource_id": rid})),
        ("de-i", "live", reverse("insights:live", kwargs={"resource_id": rid})),
    ]


def test_the_check_finds_english_on_pages_in_english(course, english):
    """The same pages without a German launch are in English: the check must see that."""
    from django.test import Client

    client = Client()
    client.force_login(course["de-i"].membership.user)
    for who, what, address in pages(course):
        if who != "de-i":
            continue
        response = client.get(address, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200 and response.wsgi_request.LANGUAGE_CODE == "en-gb"
        found = english_left(visible_text(response.content.decode()), english,
                             user_content=[*USER_CONTENT, settings.INSTANCE_NAME])
        assert len(found) >= 2, f"{what}: the check found no English on an English page"


def test_pages_for_a_german_launch_have_no_english_left(course, english):
    problems = []
    for who, what, address in pages(course):
        response = course[who].get(address)
        assert response.status_code == 200, f"{what}: {response.status_code}"
        assert response.wsgi_request.LANGUAGE_CODE == "de" and 'lang="de"' in response.content.decode()[:200]
        found = english_left(visible_text(response.content.decode()), english,
                             user_content=[*USER_CONTENT, settings.INSTANCE_NAME])
        if found:
            problems.append(f"{what} ({address}): {len(found)} English strings left:\n    "
                            + "\n    ".join(found[:25]) + ("\n    …" if len(found) > 25 else ""))
    assert not problems, "German pages with English left (translate them in app/locale/de, then " \
                         "scripts/messages compile):\n" + "\n".join(problems)
