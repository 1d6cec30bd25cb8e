"""Only course (context) roles make an instructor; an operator may add roles per consumer."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from lms.models import Consumer, Resource, ResourceMembership
from lms.roles import is_instructor
from tests.support import lms as test_lms

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person"

# The README's table, as data: role -> instructor of the course?
MAPPING = {
    # LTI 1.1 short names are context roles
    "Instructor": True, "TeachingAssistant": True, "ContentDeveloper": True, "Administrator": True, "Manager": True,
    "Learner": False, "Mentor": False, "Member": False,
    # LTI 1.1 context role URNs, any case, and their sub-roles
    "urn:lti:role:ims/lis/Instructor": True, "URN:LTI:ROLE:IMS/LIS/INSTRUCTOR": True,
    "urn:lti:role:ims/lis/Instructor/GuestInstructor": True, "urn:lti:role:ims/lis/TeachingAssistant/Grader": True,
    "urn:lti:role:ims/lis/ContentDeveloper/Librarian": True, "urn:lti:role:ims/lis/Administrator/Support": True,
    "urn:lti:role:ims/lis/Manager/CourseCoordinator": True,
    "urn:lti:role:ims/lis/Manager/Observer": False, "urn:lti:role:ims/lis/Manager/ExternalObserver": False,
    "urn:lti:role:ims/lis/Learner": False, "urn:lti:role:ims/lis/Learner/Instructor": False,
    "urn:lti:role:ims/lis/Mentor/Tutor": False,
    # LTI 1.1 institution and system roles
    "urn:lti:instrole:ims/lis/Administrator": False, "urn:lti:instrole:ims/lis/Instructor": False,
    "urn:lti:instrole:ims/lis/Faculty": False, "urn:lti:sysrole:ims/lis/SysAdmin": False,
    "urn:lti:sysrole:ims/lis/Administrator": False,
    # LTI 1.3 (LIS v2) context roles and sub-roles
    f"{MEMBERSHIP}#Instructor": True, f"{MEMBERSHIP}#ContentDeveloper": True, f"{MEMBERSHIP}#Administrator": True,
    f"{MEMBERSHIP}#Manager": True, f"{MEMBERSHIP}/Instructor#TeachingAssistant": True,
    f"{MEMBERSHIP}/Instructor#PrimaryInstructor": True, f"{MEMBERSHIP}/Manager#Observer": False,
    f"{MEMBERSHIP}#Learner": False, f"{MEMBERSHIP}/Learner#Instructor": False, f"{MEMBERSHIP}#Mentor": False,
    # LTI 1.3 institution and system roles
    f"{INSTITUTION}#Administrator": False, f"{INSTITUTION}#Instructor": False, f"{INSTITUTION}#Faculty": False,
    f"{SYSTEM}#Administrator": False, f"{SYSTEM}#SysAdmin": False,
    "http://purl.imsglobal.org/vocab/lti/system/person#TestUser": False,
    # lists, and what nobody defined
    "Learner, Instructor": True, "urn:lti:instrole:ims/lis/Administrator,urn:lti:role:ims/lis/Learner": False,
    "urn:example:lms:role:CourseOwner": False, "": False,
}


@pytest.mark.parametrize("roles, instructor", MAPPING.items())
def test_only_course_roles_make_an_instructor(roles, instructor):
    assert is_instructor(roles) is instructor


@pytest.mark.parametrize("extra, roles, instructor", [
    ("urn:lti:instrole:ims/lis/Administrator", "urn:lti:instrole:ims/lis/Administrator", True),
    ("urn:lti:instrole:ims/lis/Administrator", f"{INSTITUTION}#Administrator", True),  # the same role in LTI 1.3
    ("urn:lti:instrole:ims/lis/Administrator", "urn:lti:sysrole:ims/lis/Administrator", False),
    ("urn:lti:sysrole:ims/lis/SysAdmin\nurn:lti:instrole:ims/lis/Administrator", "urn:lti:sysrole:ims/lis/SysAdmin",
     True),
    ("Mentor", "urn:lti:role:ims/lis/Mentor/Tutor", True),  # a role covers its sub-roles
    ("urn:lti:role:ims/lis/Mentor/Tutor", "Mentor", False),  # ... but not the other way round
    ("urn:example:lms:role:CourseOwner", "urn:example:lms:role:courseowner", True),
])
def test_a_consumer_may_count_more_roles(extra, roles, instructor):
    assert is_instructor(roles, extra_instructor_roles=extra) is instructor


def launch(client, consumer, roles):
    params = test_lms.sign(test_lms.launch_params(roles=roles, user_id="admin-1"), key=consumer.key,
                           secret=consumer.secret)
    return client.post("/lti/launch/", params)


@pytest.mark.django_db
def test_an_lms_administrator_launches_as_a_student_unless_the_consumer_says_otherwise(client, consumer):
    response = launch(client, consumer, "urn:lti:instrole:ims/lis/Administrator,urn:lti:sysrole:ims/lis/SysAdmin")
    resource = Resource.objects.get()
    assert response["Location"].split("?")[0] == f"/resource/{resource.pk}/"
    assert ResourceMembership.objects.get().role == "student"
    assert client.get(f"/resource/{resource.pk}/instructor/").status_code == 403

    consumer.instructor_roles = "urn:lti:instrole:ims/lis/Administrator"
    consumer.save()
    response = launch(client, consumer, "urn:lti:instrole:ims/lis/Administrator,urn:lti:sysrole:ims/lis/SysAdmin")
    assert response["Location"].split("?")[0] == f"/resource/{resource.pk}/instructor/"
    assert ResourceMembership.objects.get().role == "instructor"


@pytest.mark.django_db
def test_another_consumers_extra_roles_do_not_count(client, consumer):
    Consumer.objects.create(key="other-lms", secret="other-secret", name="Other",
                            instructor_roles="urn:lti:instrole:ims/lis/Administrator")
    launch(client, consumer, "urn:lti:instrole:ims/lis/Administrator")
    assert ResourceMembership.objects.get().role == "student"


def run(*args) -> str:
    out = StringIO()
    call_command("create_lti_consumer", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_sets_and_clears_extra_roles_keeping_the_secret():
    run("--key", "moodle", "--secret", "s1", "--instructor-roles",
        "urn:lti:instrole:ims/lis/Administrator, urn:lti:sysrole:ims/lis/SysAdmin")
    consumer = Consumer.objects.get()
    assert consumer.instructor_roles == "urn:lti:instrole:ims/lis/Administrator\nurn:lti:sysrole:ims/lis/SysAdmin"

    out = run("--key", "moodle", "--keep-secret", "--name", "Maths Moodle")
    consumer.refresh_from_db()
    assert "unchanged" in out and consumer.secret == "s1" and consumer.name == "Maths Moodle"
    assert consumer.instructor_roles.count("\n") == 1  # not given: left as it was

    run("--key", "moodle", "--keep-secret", "--instructor-roles", "")
    consumer.refresh_from_db()
    assert consumer.instructor_roles == "" and consumer.secret == "s1"


@pytest.mark.django_db
def test_the_command_refuses_a_mistyped_role_and_writes_nothing():
    with pytest.raises(CommandError, match="urn:lti:instrole:ims/lis/Adminstrator"):
        run("--key", "moodle", "--instructor-roles", "urn:lti:instrole:ims/lis/Adminstrator")
    assert Consumer.objects.count() == 0


@pytest.mark.django_db
def test_the_admin_edits_extra_roles_and_refuses_a_mistyped_one(client, admin_user, consumer):
    client.force_login(admin_user)
    url = f"/admin/lms/consumer/{consumer.pk}/change/"
    form = {"name": consumer.name, "key": consumer.key, "secret": consumer.secret, "active": "on",
            "identifier_field": "email"}
    assert "extra instructor roles" in client.get(url).content.decode().lower()

    refused = client.post(url, {**form, "instructor_roles": "Techer"})
    assert refused.status_code == 200 and "is not an LTI role" in refused.content.decode()
    consumer.refresh_from_db()
    assert consumer.instructor_roles == ""

    saved = client.post(url, {**form, "instructor_roles": f"{INSTITUTION}#Administrator\nurn:example:lms:owner"})
    assert saved.status_code == 302
    consumer.refresh_from_db()
    assert consumer.instructor_roles.splitlines() == [f"{INSTITUTION}#Administrator", "urn:example:lms:owner"]
