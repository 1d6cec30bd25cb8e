import pytest
from django.test import Client

from lms.models import Resource
from tests.support import lms as test_lms


def launch(consumer, **params):
    client = Client()
    response = client.post(
        "/lti/launch/", test_lms.sign(test_lms.launch_params(**params), key=consumer.key, secret=consumer.secret)
    )
    assert response.status_code == 302
    return client


@pytest.mark.django_db
def test_resource_pages_check_who_is_asking(consumer, admin_user):
    student = launch(consumer, user_id="s1", resource_link_id="A")
    instructor = launch(consumer, user_id="t1", resource_link_id="A", roles="Instructor")
    other_student = launch(consumer, user_id="s2", resource_link_id="B")
    other_instructor = launch(consumer, user_id="t2", resource_link_id="B", roles="Instructor")
    staff = Client()
    staff.force_login(admin_user)
    a = Resource.objects.get(resource_link_id="A").pk

    expectations = {
        (f"/resource/{a}/", "anonymous"): 401,
        (f"/resource/{a}/", "student"): 200,
        (f"/resource/{a}/", "instructor"): 200,
        (f"/resource/{a}/", "other_student"): 403,
        (f"/resource/{a}/", "other_instructor"): 403,
        (f"/resource/{a}/instructor/", "anonymous"): 401,
        (f"/resource/{a}/instructor/", "student"): 403,
        (f"/resource/{a}/instructor/", "instructor"): 200,
        (f"/resource/{a}/instructor/", "other_student"): 403,
        (f"/resource/{a}/instructor/", "other_instructor"): 403,
        (f"/resource/{a}/instructor/", "staff"): 403,  # staff who never launched it have no membership
        ("/resource/999999/", "student"): 403,
    }
    clients = {
        "anonymous": Client(),
        "student": student,
        "instructor": instructor,
        "other_student": other_student,
        "other_instructor": other_instructor,
        "staff": staff,
    }
    got = {(url, who): clients[who].get(url).status_code for url, who in expectations}
    assert got == expectations


@pytest.mark.django_db
def test_config_xml_is_a_cartridge_with_the_launch_url(client):
    import xml.etree.ElementTree as ET

    response = client.get("/lti/config.xml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    ns = {"blti": "http://www.imsglobal.org/xsd/imsbasiclti_v1p0"}
    assert root.find("blti:launch_url", ns).text == "http://testserver/lti/launch/"
    assert root.find("blti:title", ns).text
