"""The viewer's time zone (issue 16, problem 7): chosen by the person, else reported by the browser,
else the site's; activated for every request, named wherever a time is shown; durations in words."""

import datetime
import re
import zoneinfo

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import timezone, translation

from attempts.models import Attempt
from attempts.tests.factories import launch, with_exam
from core.when import duration_text, when_text
from exams.selectors import exam_current
from people.models import Preferences

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
WINTER = datetime.datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # 14:00 in Berlin (CET), 08:00 in New York (EST)
SUMMER = datetime.datetime(2026, 7, 3, 12, 0, tzinfo=UTC)  # 14:00 in Berlin (CEST), 13:00 in London (BST)


def render(source, **context):
    return Template("{% load when %}" + source).render(Context(context))


# --- filters --------------------------------------------------------------------------------------

@pytest.mark.parametrize("zone, moment, text", [
    ("Europe/Berlin", WINTER, "3 Dec 2026, 14:00 CET"),
    ("Europe/Berlin", SUMMER, "3 Jul 2026, 14:00 CEST"),
    ("Europe/London", WINTER, "3 Dec 2026, 13:00 GMT"),
    ("Europe/London", SUMMER, "3 Jul 2026, 13:00 BST"),
    ("America/New_York", WINTER, "3 Dec 2026, 08:00 EST"),
    ("Asia/Dubai", WINTER, "3 Dec 2026, 17:00 Asia/Dubai"),  # its abbreviation is only "+04"
    ("UTC", WINTER, "3 Dec 2026, 13:00 UTC"),
])
def test_when_names_the_zone_in_use_with_daylight_saving(zone, moment, text):
    with timezone.override(zoneinfo.ZoneInfo(zone)), translation.override("en-gb"):
        html = render("{{ t|when }}", t=moment)
    assert re.fullmatch(r'<time datetime="[^"]+" title="%s">%s</time>' % (re.escape(zone), re.escape(text)), html), html
    assert datetime.datetime.fromisoformat(re.search(r'datetime="([^"]+)"', html).group(1)) == moment


def test_one_format_per_language_on_a_24_hour_clock():
    afternoon = datetime.datetime(2026, 12, 3, 15, 5, 9, tzinfo=UTC)
    with timezone.override(zoneinfo.ZoneInfo("UTC")):
        with translation.override("en-gb"):
            assert when_text(afternoon) == "3 Dec 2026, 15:05 UTC"
            assert when_text(afternoon, "seconds") == "3 Dec 2026, 15:05:09 UTC"
            assert when_text(afternoon, "date") == "3 Dec 2026"
        with translation.override("en"):
            assert when_text(afternoon) == "3 Dec 2026, 15:05 UTC"
        with translation.override("de"):
            assert when_text(afternoon).endswith("2026, 15:05 UTC") and when_text(afternoon).startswith("3. ")
        with translation.override("es"):
            assert when_text(afternoon).endswith("2026, 15:05 UTC")
    assert render("{{ t|when }}", t=None) == ""


@pytest.mark.parametrize("seconds, text", [
    (1800, "30 minutes"), (5400, "1 hour 30 minutes"), (3600, "1 hour"), (7200, "2 hours"), (60, "1 minute"),
    (45, "45 seconds"), (1, "1 second"), ("1800.0", "30 minutes"), (None, ""),
])
def test_durations_in_minutes_and_hours(seconds, text):
    with translation.override("en-gb"):
        assert duration_text(seconds) == text
        assert render("{{ s|duration }}", s=seconds) == text


# --- where the zone comes from ------------------------------------------------------------------

@pytest.fixture
def course(consumer):
    teacher = launch(consumer, user_id="tz-teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource)
    return teacher, resource


def settings_zone_line(client, resource):
    response = client.get(f"/resource/{resource.pk}/instructor/")
    assert response.status_code == 200
    return re.search(r'data-testid="settings-time-zone">(.*?)<a', response.content.decode()).group(1)


@override_settings(TIME_ZONE="UTC")
def test_the_browser_zone_is_kept_in_the_session_and_used(course):
    teacher, resource = course
    assert "Times are in UTC" in settings_zone_line(teacher, resource)
    answer = teacher.post("/resource/preferences/browser-zone/", {"zone": "Europe/Berlin"})
    assert answer.status_code == 200 and answer.json() == {"zone": "Europe/Berlin", "changed": True}
    assert "Times are in Europe/Berlin" in settings_zone_line(teacher, resource)
    again = teacher.post("/resource/preferences/browser-zone/", {"zone": "Europe/Berlin"})
    assert again.json()["changed"] is False


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "x" * 300])
def test_an_unknown_browser_zone_is_refused_with_a_message(course, zone):
    teacher, resource = course
    answer = teacher.post("/resource/preferences/browser-zone/", {"zone": zone})
    assert answer.status_code == 400
    assert "is not a time zone we know" in answer.json()["error"]
    assert "Times are in UTC" in settings_zone_line(teacher, resource)


def test_the_browser_zone_needs_someone_signed_in(client):
    answer = client.post("/resource/preferences/browser-zone/", {"zone": "Europe/Berlin"})
    assert answer.status_code == 401 and answer.json()["error"]
    assert client.get("/resource/preferences/").status_code == 401


def test_the_persons_own_zone_wins_over_the_browsers_and_lasts_to_the_next_launch(course, consumer):
    teacher, resource = course
    teacher.post("/resource/preferences/browser-zone/", {"zone": "Europe/Berlin"})
    page = teacher.get("/resource/preferences/?next=/resource/%d/instructor/" % resource.pk)
    assert "the time zone of your browser" in page.content.decode() and "Europe/Berlin" in page.content.decode()
    saved = teacher.post("/resource/preferences/", {"time_zone": "America/New_York",
                                                     "next": f"/resource/{resource.pk}/instructor/"})
    assert saved.status_code == 302 and saved["Location"] == f"/resource/{resource.pk}/instructor/"
    assert "Times are in America/New_York" in settings_zone_line(teacher, resource)
    assert Preferences.objects.get(user=teacher.membership.user).time_zone == "America/New_York"
    later = launch(consumer, user_id="tz-teacher", roles="Instructor")  # a new session, browser not heard yet
    assert "Times are in America/New_York" in settings_zone_line(later, resource)
    # Back to the browser's zone.
    teacher.post("/resource/preferences/", {"time_zone": ""})
    assert "Times are in Europe/Berlin" in settings_zone_line(teacher, resource)


def test_a_zone_not_in_the_list_is_refused_on_the_preferences_page(course):
    teacher, _ = course
    answer = teacher.post("/resource/preferences/", {"time_zone": "Mars/Olympus_Mons"})
    assert answer.status_code == 400 and "Choose a time zone from the list." in answer.content.decode()


def test_an_offsite_next_address_is_not_followed(course):
    teacher, _ = course
    saved = teacher.post("/resource/preferences/", {"time_zone": "Europe/Paris", "next": "https://evil.example/"})
    assert saved.status_code == 302 and saved["Location"].startswith("/resource/preferences/")


# --- the same time, two viewers -----------------------------------------------------------------

def test_the_same_attempt_time_in_each_viewers_zone_named(course, consumer):
    teacher, resource = course
    student = launch(consumer, user_id="tz-student", lis_person_name_full="Tess Zone")
    attempt = Attempt.objects.create(resource=resource, user=student.membership.user, number=1,
                                     exam=exam_current(resource_id=resource.pk))
    Attempt.objects.filter(pk=attempt.pk).update(started_at=WINTER)
    colleague = launch(consumer, user_id="tz-colleague", roles="Instructor")
    teacher.post("/resource/preferences/browser-zone/", {"zone": "Europe/Berlin"})
    colleague.post("/resource/preferences/", {"time_zone": "America/New_York"})
    url = f"/resource/{resource.pk}/instructor/students/{student.membership.pk}/"
    berlin = teacher.get(url).content.decode()
    new_york = colleague.get(url).content.decode()
    assert "3 Dec 2026, 14:00 CET" in berlin and "08:00 EST" not in berlin
    assert "3 Dec 2026, 08:00 EST" in new_york and "14:00 CET" not in new_york
    student.post("/resource/preferences/browser-zone/", {"zone": "Europe/London"})
    assert "3 Dec 2026, 13:00 GMT" in student.get(f"/resource/{resource.pk}/").content.decode()


# --- forms read and show times in the viewer's zone; students are told the zone ---------------

SETTINGS = {"max_attempts": "3", "allow_review": "on", "show_score": "complete", "grading_method": "last",
            "report_when": "completion"}


def test_the_settings_form_reads_and_shows_times_in_the_instructors_zone(course, consumer):
    teacher, resource = course
    teacher.post("/resource/preferences/browser-zone/", {"zone": "Europe/Berlin"})
    saved = teacher.post(f"/resource/{resource.pk}/instructor/settings/",
                         {**SETTINGS, "available_from": "2026-12-24T18:00"})
    assert saved.status_code == 302
    from attempts.models import ResourceSettings

    assert ResourceSettings.objects.get(resource=resource).available_from == datetime.datetime(
        2026, 12, 24, 17, 0, tzinfo=UTC)
    page = teacher.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert 'value="2026-12-24T18:00"' in page
    assert "Times are in Europe/Berlin" in page and "Times are in UTC" not in page

    student = launch(consumer, user_id="tz-early", lis_person_name_full="Erin Early")
    student.post("/resource/preferences/browser-zone/", {"zone": "America/New_York"})
    page = student.get(f"/resource/{resource.pk}/").content.decode()
    assert "This exam opens on 24 Dec 2026 at 12:00 EST." in page


def test_the_exam_length_is_in_minutes_not_seconds(course):
    teacher, resource = course
    from exams.models import ExamPackage

    ExamPackage.objects.filter(resource=resource).update(duration_seconds=1800)
    page = teacher.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert "30 minutes long" in page and "1800 s" not in page
