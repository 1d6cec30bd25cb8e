"""Which LTI roles make someone an instructor of the course they launch from.

A launch's `roles` mixes three vocabularies (LTI 1.1: LIS URNs and short names; LTI 1.3: the
LIS v2 URIs):

- **context** (course) roles — `urn:lti:role:ims/lis/Instructor`, the short form `Instructor`
  (in LTI 1.1 a short name *is* a context role), `http://purl.imsglobal.org/vocab/lis/v2/
  membership#Instructor`, and sub-roles such as `urn:lti:role:ims/lis/TeachingAssistant/Grader`
  or `.../membership/Instructor#TeachingAssistant`;
- **institution** roles — `urn:lti:instrole:ims/lis/Administrator`, `.../institution/person#…`;
- **system** roles — `urn:lti:sysrole:ims/lis/SysAdmin`, `.../system/person#…`.

Only context roles say what someone is *in this course*. An institution or system
administrator is not thereby an instructor of every course of the LMS (they would see every
student's answers and change every exam); an operator who wants that for one LMS lists such
roles on its consumer (`Consumer.instructor_roles`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

CONTEXT, INSTITUTION, SYSTEM, OTHER = "context", "institution", "system", "other"

# The context roles that make someone an instructor, and their sub-roles that do not.
# Instructor, TeachingAssistant (a context role in LTI 1.1, a sub-role of Instructor in 1.3),
# ContentDeveloper (course designers: they set the exam up) and the course's Administrator and
# Manager (course coordinators). Not Learner, Member, Mentor (advisers, reviewers, tutors and —
# in some LMSs — parents, who follow individual learners) or Officer, nor a Manager's Observer
# sub-roles, who watch but do not teach.
INSTRUCTOR_CONTEXT_ROLES = frozenset(
    {"instructor", "teachingassistant", "contentdeveloper", "administrator", "manager"}
)
NOT_INSTRUCTOR_SUB_ROLES = frozenset({("manager", "observer"), ("manager", "externalobserver")})

# The principal roles of each vocabulary (LIS 2.0 for LTI 1.1, LIS v2 for LTI 1.3), lower case:
# a configured role outside them is a typo, unless it is an LMS's own URN or URI.
KNOWN = {
    CONTEXT: frozenset({"learner", "instructor", "contentdeveloper", "member", "manager", "mentor", "administrator",
                        "teachingassistant", "officer"}),
    INSTITUTION: frozenset({"student", "faculty", "member", "learner", "instructor", "mentor", "staff", "alumni",
                            "prospectivestudent", "guest", "other", "administrator", "observer", "none"}),
    SYSTEM: frozenset({"sysadmin", "syssupport", "creator", "accountadmin", "user", "administrator", "none",
                       "testuser"}),
}

_URN = {"urn:lti:role:ims/lis/": CONTEXT, "urn:lti:instrole:ims/lis/": INSTITUTION, "urn:lti:sysrole:ims/lis/": SYSTEM}
_URI = re.compile(
    r"https?://purl\.imsglobal\.org/vocab/(?:"
    r"lis/v2/membership(?:/(?P<principal>[^#/]+))?#(?P<context>[^#/]+)"
    r"|lis/v2/institution/person#(?P<institution>[^#/]+)"
    r"|(?:lis/v2|lti)/system/person#(?P<system>[^#/]+))"
)


@dataclass(frozen=True)
class LtiRole:
    """One role of a launch, lower case: its vocabulary, principal role and sub-role ("" if none).
    Roles from no known vocabulary keep their whole text as `name`."""

    scope: str
    name: str
    sub: str = ""

    def within(self, other: LtiRole) -> bool:
        """This role is `other`, or a sub-role of it."""
        return (self.scope, self.name) == (other.scope, other.name) and other.sub in ("", self.sub)


def role_parse(text: str) -> LtiRole:
    text = text.strip().lower()
    for prefix, scope in _URN.items():
        if text.startswith(prefix):
            name, _, sub = text.removeprefix(prefix).partition("/")
            return LtiRole(scope, name, sub)
    if match := _URI.fullmatch(text):
        if match["context"]:
            # membership#Instructor, or the sub-role form membership/Instructor#TeachingAssistant
            return LtiRole(CONTEXT, match["principal"], match["context"]) if match["principal"] \
                else LtiRole(CONTEXT, match["context"])
        if match["institution"]:
            return LtiRole(INSTITUTION, match["institution"])
        return LtiRole(SYSTEM, match["system"])
    if text and ":" not in text:  # a short name: LTI 1.1 (and 1.3's deprecated simple names) mean a context role
        name, _, sub = text.partition("/")
        return LtiRole(CONTEXT, name, sub)
    return LtiRole(OTHER, text)


def roles_split(text: str) -> list[str]:
    """A roles list: comma-separated as LTI sends it (or one per line, as an operator types it)."""
    return [part.strip() for part in re.split(r"[,\s]+", text) if part.strip()]


def is_instructor(roles: str, *, extra_instructor_roles: str = "") -> bool:
    """Whether a launch's `roles` make its user an instructor of the course: a context role in
    INSTRUCTOR_CONTEXT_ROLES (or a sub-role of one), or one of the consumer's extra roles."""
    extra = [role_parse(r) for r in roles_split(extra_instructor_roles)]
    for text in roles_split(roles):
        role = role_parse(text)
        if role.scope == CONTEXT and role.name in INSTRUCTOR_CONTEXT_ROLES \
                and (role.name, role.sub) not in NOT_INSTRUCTOR_SUB_ROLES:
            return True
        if any(role.within(granted) for granted in extra):
            return True
    return False


def validate_role_list(text: str) -> None:
    """Every entry is a role of the LTI vocabularies (any spelling of it), or an LMS's own URN or URI."""
    for entry in roles_split(text):
        role = role_parse(entry)
        if len(entry) > 255 or (role.scope != OTHER and role.name not in KNOWN[role.scope]):
            raise ValidationError(
                gettext("“%(role)s” is not an LTI role. Use a role of the LTI vocabularies, such as "
                        "urn:lti:instrole:ims/lis/Administrator, or your LMS's own role URN.") % {"role": entry[:100]},
                code="unknown_role",
            )
