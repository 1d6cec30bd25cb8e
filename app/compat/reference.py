"""Every address of numbas-lti-provider (the reference, v4.x) and what it does here.

After `manage.py import_reference` and a DNS move, LMS courses still hold the reference's
addresses (LTI 1.1 launch URL, LTI 1.3 login/launch/keys, configuration URLs) and people still
hold bookmarks. Each address is one `OldAddress` below, in one of five kinds:

    SAME      served here at the very same path by our own view (not routed by this app)
    LAUNCH    the LTI 1.1 launch URL: our launch, its signature checked against this address
    ALIAS     a configuration address an LMS reads: our own document, at the reference's path
    REDIRECT  a page people bookmarked: a redirect to the nearest page here (404 when the row it
              names was not imported)
    GONE      a step inside the reference's own flows, or a feature it had and we do not:
              410 with a page that says what to do instead

docs/reference-urls.md is the same list for people; compat.tests check that both agree and
that every address answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from compat import links

SAME = "same"
LAUNCH = "launch"
ALIAS = "alias"
REDIRECT = "redirect"
GONE = "gone"


@dataclass(frozen=True)
class Gone:
    """Why an old address answers 410, in words for the person who opened it."""

    code: str
    title: str
    detail: str


RELAUNCH = Gone(
    "relaunch",
    _("Open the activity again from your course"),
    _("This address was one step of opening an activity on the previous Numbas LTI service, which this "
      "one has replaced. Go back to your course in the learning platform and open the activity again: "
      "your attempts are all here."),
)
OLD_EXAM_PAGE = Gone(
    "old_exam_page",
    _("This exam page is out of date"),
    _("The page that sent this was opened before the Numbas LTI service moved. Close it, go back to your "
      "course and open the activity again: you will continue where your answers were last saved."),
)
RETIRED = Gone(
    "retired",
    _("This page no longer exists"),
    _("It belonged to the previous Numbas LTI service and has no counterpart here. The service's "
      "administrators manage the tool from the administration pages."),
)
REGISTRATION = Gone(
    "registration",
    _("This registration address no longer works"),
    _("Registration addresses from the previous Numbas LTI service cannot be used here. Ask the "
      "service's administrator for a new registration link."),
)
DEEP_LINKING = Gone(
    "deep_linking",
    _("Add the activity again from your course"),
    _("This step of choosing an activity belonged to the previous Numbas LTI service. Start again from "
      "your course in the learning platform: adding an activity there opens the choice here."),
)

ACCESS_CHANGES = Gone(
    "access_changes",
    _("Access changes have moved"),
    _("Extra time, extra attempts and later deadlines for particular students are on each activity's "
      "Students page here. Open the activity from your course, then go to its students."),
)


# --- where a REDIRECT goes --------------------------------------------------------------------

Target = Callable[[int | None], "str | None"]  # (reference id named by the address) -> our URL or None


def to(name: str) -> Target:
    """A fixed page here."""
    return lambda ref: reverse(name)


def in_activity(name: str, kind: str = links.RESOURCE, fragment: str = "") -> Target:
    """A page (and part of it) of the activity that the reference's `kind` row (a resource, or
    something in one) became here."""
    def target(ref):
        found = links.find(kind, ref)
        if found is None or found.resource_id is None:
            return None
        return reverse(name, kwargs={"resource_id": found.resource_id}) + (f"#{fragment}" if fragment else "")
    return target


def attempt_page(name: str) -> Target:
    def target(ref):
        found = links.find(links.ATTEMPT, ref)
        if found is None or found.resource_id is None:
            return None
        kwargs = {"attempt_id": int(found.pk)}
        if name.startswith("dashboard:"):
            kwargs["resource_id"] = found.resource_id
        return reverse(name, kwargs=kwargs)
    return target


def admin_change(kind: str, name: str) -> Target:
    def target(ref):
        found = links.find(kind, ref)
        return None if found is None else reverse(name, args=[found.pk])
    return target


@dataclass(frozen=True)
class OldAddress:
    route: str  # the reference's path, Django route syntax, without the leading slash
    kind: str
    summary: str  # what it was there → what it does here (English; for docs/reference-urls.md)
    name: str = ""  # our route name (namespace "compat"); "" for SAME
    target: Target | None = None  # REDIRECT
    gone: Gone | None = None  # GONE
    view: str = ""  # LAUNCH/ALIAS: our view, "module.function"
    same_as: str = ""  # SAME: our route name at that path
    methods: tuple[str, ...] = field(default=("GET",))  # how the reference was used (for tests)


def _a(route, kind, summary, name="", **kw) -> OldAddress:
    return OldAddress(route=route, kind=kind, summary=summary, name=name, **kw)


ADDRESSES: list[OldAddress] = [
    # --- what LMSs are configured with -------------------------------------------------------
    _a("lti_entry", LAUNCH, "LTI 1.1 launch URL → our LTI 1.1 launch (signature checked against this address)",
       "lti_entry", view="lms.views.launch", methods=("POST",)),
    _a("config.xml", ALIAS, "LTI 1.1 configuration cartridge → ours (its launch URL is ours, /lti/launch/)",
       "config_xml", view="lms.views.config_xml"),
    _a("lti13/login/", SAME, "LTI 1.3 OIDC login initiation → ours, same path", same_as="lti13:login",
       methods=("GET", "POST")),
    _a("lti13/launch/", SAME, "LTI 1.3 launch / redirect URI / target link URI → ours, same path",
       same_as="lti13:launch", methods=("POST",)),
    _a("lti13/jwks/", SAME, "LTI 1.3 tool public keys (JWKS) → ours, same path (a ?iss= query is ignored)",
       same_as="lti13:jwks"),
    _a("lti13/register/canvas_config.json", ALIAS, "Canvas LTI 1.3 developer key JSON → ours",
       "canvas_config_json", view="lti13.views.canvas_config"),
    _a("lti13/register/dynamic/<uuid:token>/use/", GONE,
       "LTI 1.3 dynamic registration URL (one-time) → 410: make a new one with manage.py lti13_registration_link",
       "use_dynamic_registration_token", gone=REGISTRATION, methods=("GET", "POST")),
    _a("lti13/register/dynamic/<uuid:token>/view/", GONE, "dynamic registration token page → 410",
       "view_dynamic_registration_token", gone=REGISTRATION),
    _a("lti13/register/dynamic/new-token/", GONE,
       "new dynamic registration token → 410: manage.py lti13_registration_link makes one",
       "new_dynamic_registration_token", gone=REGISTRATION),
    _a("lti13/register/", SAME,
       "LTI 1.3 registration menu (administrators) → our dynamic registration start, same path (without "
       "an openid_configuration it says what is missing, 400)", same_as="lti13:register"),
    _a("lti13/register/canvas", REDIRECT, "manual Canvas registration form → admin: add a platform",
       "register_canvas", target=to("admin:lti13_platform_add")),
    _a("lti13/register/blackboard", REDIRECT, "manual Blackboard registration form → admin: add a platform",
       "register_blackboard", target=to("admin:lti13_platform_add")),
    _a("lti13/register/generic", REDIRECT, "manual registration form → admin: add a platform",
       "register_generic", target=to("admin:lti13_platform_add")),
    _a("lti13/launch/teacher/", GONE, "step after a 1.3 launch (session) → 410: open the activity again",
       "teacher_launch", gone=RELAUNCH, methods=("GET", "POST")),
    _a("lti13/launch/student/", GONE, "step after a 1.3 launch (session) → 410: open the activity again",
       "student_launch", gone=RELAUNCH, methods=("GET", "POST")),
    _a("lti13/deep-link/", GONE, "deep linking picker (session) → 410: add the activity again from the LMS",
       "deep_link", gone=DEEP_LINKING, methods=("GET", "POST")),
    _a("lti13/deep-link/use-resource/", GONE, "deep linking choice → 410", "deep_link_use_resource",
       gone=DEEP_LINKING, methods=("POST",)),
    _a("lti13/deep-link/create-resource/", GONE, "deep linking new activity → 410", "deep_link_create_resource",
       gone=DEEP_LINKING, methods=("POST",)),
    # --- the LTI 1.1 launch's own continuation, and exam pages open during the move ------------
    _a("check_cookie_entry", GONE, "step after a 1.1 launch (cookie check) → 410: open the activity again",
       "check_cookie_entry", gone=RELAUNCH),
    _a("set_cookie_entry", GONE, "step after a 1.1 launch (new window) → 410: open the activity again",
       "set_cookie_entry", gone=RELAUNCH),
    _a("show_attempts", GONE, "student's list of attempts (from the launch session) → 410: open the activity "
       "again", "show_attempts", gone=RELAUNCH),
    _a("new_attempt", GONE, "start an attempt (from the launch session) → 410: open the activity again",
       "new_attempt", gone=RELAUNCH, methods=("GET", "POST")),
    _a("run_attempt/<id:pk>", REDIRECT, "an attempt → the same (imported) attempt here", "run_attempt",
       target=attempt_page("attempts:run")),
    _a("run_attempt/<id:pk>/scorm_cmi", GONE, "exam data of an open exam page → 410: reload from the course",
       "run_attempt_scorm_cmi", gone=OLD_EXAM_PAGE),
    _a("attempt/<id:pk>/scorm_data_fallback", GONE,
       "saving from an open exam page without websockets → 410: reload from the course",
       "attempt_scorm_data_fallback", gone=OLD_EXAM_PAGE, methods=("POST",)),
    _a("lockdown/launch", GONE, "lockdown app launch → 410 (no lockdown app here)", "lockdown_launch",
       gone=RELAUNCH),
    _a("safe_exam_browser/launch", GONE, "Safe Exam Browser launch → 410 (no Safe Exam Browser here)",
       "seb_launch", gone=RELAUNCH),
    _a("safe_exam_browser/quit", GONE, "Safe Exam Browser quit link → 410", "seb_quit", gone=RETIRED),
    _a("no-websockets", GONE, "\"websockets blocked\" notice → 410", "no_websockets", gone=RELAUNCH),
    _a("not-authorized", GONE, "\"not authorised\" notice → 410", "not_authorized", gone=RELAUNCH),
    # --- an activity's pages (instructors) ---------------------------------------------------
    _a("resource/<id:pk>", REDIRECT, "activity dashboard → the activity's instructor page",
       "resource_dashboard", target=in_activity("portal:instructor")),
    _a("resource/<id:pk>/settings", REDIRECT, "activity settings → the instructor page (settings are there)",
       "resource_settings", target=in_activity("portal:instructor", fragment="settings")),
    _a("resource/<id:pk>/create_exam", REDIRECT, "upload the exam → the instructor page's exam section",
       "create_exam", target=in_activity("portal:instructor", fragment="exam-upload")),
    _a("resource/<id:pk>/replace", REDIRECT, "replace the exam → the instructor page's exam section",
       "replace_exam", target=in_activity("portal:instructor", fragment="exam-upload")),
    _a("resource/<id:pk>/restore_exam", REDIRECT,
       "restore an old exam version → the instructor page's exam section", "restore_exam",
       target=in_activity("portal:instructor", fragment="exam-upload")),
    _a("resource/<id:pk>/use_current_version", REDIRECT, "move attempts to the current version → the "
       "instructor page's exam section", "use_current_version",
       target=in_activity("portal:instructor", fragment="exam-upload")),
    _a("resource/<id:pk>/student_progress", REDIRECT, "student progress → the activity's students",
       "student_progress", target=in_activity("dashboard:students")),
    _a("resource/<id:pk>/attempts", REDIRECT, "all attempts → the activity's students", "manage_attempts",
       target=in_activity("dashboard:students")),
    _a("resource/<id:pk>/access_changes", REDIRECT,
       "access changes → the activity's students (access changes are there)",
       "resource_access_changes", target=in_activity("dashboard:students")),
    _a("resource/<id:pk>/access_change/create", REDIRECT, "new access change → the activity's students",
       "create_access_change", target=in_activity("dashboard:students")),
    _a("access_change/<id:pk>", GONE, "an access change → 410: access changes are on the activity's "
       "students page", "update_access_change", gone=ACCESS_CHANGES),
    _a("access_change/<id:pk>/delete", GONE, "delete an access change → 410 (as above)",
       "delete_access_change", gone=ACCESS_CHANGES, methods=("GET", "POST")),
    _a("resource/<id:pk>/discount_parts", REDIRECT, "discounted parts → the activity's grades (discounts)",
       "discount_parts", target=in_activity("grading:grades")),
    _a("resource/<id:pk>/report_scores", REDIRECT, "report scores to the LMS → the activity's grades",
       "report_scores", target=in_activity("grading:grades"), methods=("GET", "POST")),
    _a("resource/<id:pk>/create_lineitem", REDIRECT, "create a gradebook column → the activity's grades",
       "resource_create_lineitem", target=in_activity("grading:grades")),
    _a("resource/<id:pk>/unwanted_lineitem", REDIRECT, "unwanted gradebook column → the activity's grades",
       "resource_unwanted_lineitem", target=in_activity("grading:grades")),
    _a("resource/<id:pk>/validate_receipt", REDIRECT, "check a receipt code → the same here",
       "validate_receipt", target=in_activity("attempts:receipt_check")),
    _a("resource/<id:pk>/reports", REDIRECT, "file reports → the activity's reports", "resource_reports",
       target=in_activity("reports:list")),
    _a("resource/<id:pk>/scores.csv", REDIRECT, "scores CSV → the activity's reports", "scores_csv",
       target=in_activity("reports:list"), methods=("GET", "POST")),
    _a("resource/<id:pk>/attempts.csv", REDIRECT, "attempts CSV → the activity's reports", "attempts_csv",
       target=in_activity("reports:list"), methods=("GET", "POST")),
    _a("resource/<id:pk>/attempts.json", REDIRECT, "JSON dump of attempts → the activity's reports",
       "resource_json_dump", target=in_activity("reports:list"), methods=("GET", "POST")),
    _a("resource/<id:pk>/stats", REDIRECT, "statistics → the activity's statistics", "resource_stats",
       target=in_activity("insights:statistics")),
    _a("resource/<id:pk>/analysis", REDIRECT, "question analysis (v4.5+) → the activity's statistics",
       "resource_analysis", target=in_activity("insights:statistics")),
    _a("resource/<id:pk>/analysis/tags", REDIRECT, "analysis by tags (v4.5+) → the activity's statistics",
       "resource_analysis_tags", target=in_activity("insights:statistics")),
    _a("resource/<id:pk>/remark", REDIRECT, "re-mark all attempts → the activity's re-marking page",
       "resource_remark", target=in_activity("remarking:page")),
    _a("resource/<id:pk>/remark/iframe", GONE, "re-marking's exam frame → 410", "resource_remark_iframe",
       gone=OLD_EXAM_PAGE),
    _a("resource/<id:pk>/remark/attempt_data", GONE, "re-marking's data → 410",
       "resource_remark_attempt_data", gone=OLD_EXAM_PAGE),
    _a("resource/<id:pk>/remark/save_data", GONE, "re-marking's save → 410", "resource_remark_save_data",
       gone=OLD_EXAM_PAGE, methods=("POST",)),
    _a("resource/<id:pk>/grant_access_token/<id:user_id>", GONE, "grant a lockdown access token → 410",
       "grant_access_token", gone=RETIRED, methods=("POST",)),
    _a("resource/<id:pk>/remove_access_token/<id:user_id>", GONE, "remove a lockdown access token → 410",
       "remove_access_token", gone=RETIRED, methods=("POST",)),
    _a("exam/<id:pk>/run", REDIRECT, "try the exam → the activity's test runs", "run_exam",
       target=in_activity("attempts:test_runs", links.EXAM)),
    _a("report-process/<id:pk>/dismiss", GONE, "dismiss a finished score report → 410",
       "dismiss_report_process", gone=RETIRED, methods=("POST",)),
    # --- an attempt's pages (instructors) ------------------------------------------------------
    _a("attempt/<id:pk>/remark_parts", REDIRECT, "change an attempt's scores → the attempt's page",
       "remark_parts", target=attempt_page("dashboard:attempt")),
    _a("attempt/<id:pk>/scorm-listing", REDIRECT, "an attempt's SCORM data → the attempt's page",
       "attempt_scorm_listing", target=attempt_page("dashboard:attempt")),
    _a("attempt/<id:pk>/timeline", REDIRECT, "an attempt's timeline → the attempt's page", "attempt_timeline",
       target=attempt_page("dashboard:attempt")),
    _a("attempt/<id:pk>/delete", REDIRECT, "delete an attempt → the attempt's page", "delete_attempt",
       target=attempt_page("dashboard:attempt")),
    _a("attempt/<id:pk>/reopen", REDIRECT, "re-open an attempt → the attempt's page", "reopen_attempt",
       target=attempt_page("dashboard:attempt")),
    _a("attempt/<id:pk>/data.json", REDIRECT, "an attempt's JSON dump → the attempt's page",
       "attempt_json_dump", target=attempt_page("dashboard:attempt")),
    # --- the administrators' pages -----------------------------------------------------------------
    _a("", SAME, "front page → ours, same path", same_as="home"),
    _a("admin/", SAME, "Django admin → ours, same path (our own models)", same_as="admin:index"),
    _a("login", REDIRECT, "administrator sign-in → the admin sign-in", "login", target=to("admin:login")),
    _a("create-superuser", GONE, "first administrator of a new install → 410: manage.py createsuperuser",
       "create_superuser", gone=RETIRED),
    _a("dashboard", REDIRECT, "global dashboard → the staff dashboard", "global_dashboard",
       target=to("staff:dashboard")),
    _a("global-search", REDIRECT, "global search → the staff dashboard", "global_search",
       target=to("staff:dashboard")),
    _a("search-autocomplete", GONE, "search suggestions → 410", "search_autocomplete", gone=RETIRED),
    _a("user-info/<id:pk>", REDIRECT, "a user → the user in the admin", "global_user_info",
       target=admin_change(links.USER, "admin:auth_user_change")),
    _a("consumers", REDIRECT, "LTI consumers → the admin's consumers", "list_consumers",
       target=to("admin:lms_consumer_changelist")),
    _a("consumers/create", REDIRECT, "new consumer → the admin's new consumer", "create_consumer",
       target=to("admin:lms_consumer_add")),
    _a("consumers/<id:pk>", REDIRECT, "a consumer → the consumer in the admin", "view_consumer",
       target=admin_change(links.CONSUMER, "admin:lms_consumer_change")),
    _a("consumers/<id:pk>/time-periods", REDIRECT, "a consumer's time periods → the consumer in the admin",
       "consumer_manage_time_periods", target=admin_change(links.CONSUMER, "admin:lms_consumer_change")),
    _a("consumers/<id:pk>/delete", REDIRECT, "delete a consumer → the consumer in the admin",
       "delete_consumer", target=admin_change(links.CONSUMER, "admin:lms_consumer_change")),
    _a("time-period/<id:pk>/delete", GONE, "delete a consumer's time period → 410",
       "delete_consumer_time_period", gone=RETIRED),
    _a("contexts/<id:pk>", REDIRECT, "a course → the course in the admin", "view_context",
       target=admin_change(links.CONTEXT, "admin:lms_context_change")),
    _a("contexts/<id:pk>/delete", REDIRECT, "delete a course → the course in the admin", "delete_context",
       target=admin_change(links.CONTEXT, "admin:lms_context_change")),
    _a("css-test", GONE, "style test page → 410", "css_test", gone=RETIRED),
    _a("lockdown/dashboard", GONE, "lockdown app dashboard → 410", "lockdown_dashboard", gone=RETIRED),
    _a("stress", GONE, "stress tests → 410", "list_stresstests", gone=RETIRED),
    _a("stress/create", GONE, "new stress test → 410", "create_stresstest", gone=RETIRED),
    _a("stress/<id:pk>/view", GONE, "a stress test → 410", "view_stresstest", gone=RETIRED),
    _a("stress/<id:pk>/new-attempt", GONE, "a stress test's attempt → 410", "new_stresstest_attempt",
       gone=RETIRED),
    _a("stress/<id:pk>/wipe", GONE, "wipe a stress test → 410", "wipe_stresstest", gone=RETIRED),
    _a("stress/<id:pk>/delete", GONE, "delete a stress test → 410", "delete_stresstest", gone=RETIRED),
    _a("editorlinks", GONE, "Numbas editor links → 410", "list_editorlinks", gone=RETIRED),
    _a("editorlinks/create", GONE, "new editor link → 410", "create_editorlink", gone=RETIRED),
    _a("editorlink/<id:pk>/edit", GONE, "edit an editor link → 410", "edit_editorlink", gone=RETIRED),
    _a("editorlink/<id:pk>/delete", GONE, "delete an editor link → 410", "delete_editorlink", gone=RETIRED),
    _a("safe_exam_browser/settings", GONE, "Safe Exam Browser settings → 410", "list_seb_settings",
       gone=RETIRED),
    _a("safe_exam_browser/settings/new", GONE, "new Safe Exam Browser settings → 410", "create_seb_settings",
       gone=RETIRED),
    _a("safe_exam_browser/settings/<id:pk>/edit", GONE, "edit Safe Exam Browser settings → 410",
       "edit_seb_settings", gone=RETIRED),
    _a("safe_exam_browser/settings/<id:pk>/delete", GONE, "delete Safe Exam Browser settings → 410",
       "delete_seb_settings", gone=RETIRED),
]


def routed() -> list[OldAddress]:
    """The addresses this app routes (every kind but SAME)."""
    return [a for a in ADDRESSES if a.kind != SAME]
