from django import forms
from django.forms.boundfield import BoundField
from django.utils.translation import gettext_lazy as _

from attempts.models import LatePolicy, ResourceSettings
from lms.models import IdentifierField

_WHEN = {"type": "datetime-local"}
_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


def _when(label, help_text):
    return forms.DateTimeField(label=label, help_text=help_text, required=False, input_formats=_FORMATS,
                               widget=forms.DateTimeInput(attrs=_WHEN, format="%Y-%m-%dT%H:%M"))


class LinkedBoundField(BoundField):
    """A field whose errors are tied to its input: aria-invalid="true" and aria-describedby naming
    the error message (and the help text), so a screen reader reads why when the field has focus."""

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        if self.form.is_bound and self.errors:
            attrs["aria-invalid"] = "true"
            described = [f"{self.auto_id}_error"]
            if self.help_text:
                described.append(f"{self.auto_id}_helptext")
            attrs["aria-describedby"] = " ".join(described)
        return attrs


class ResourceSettingsForm(forms.ModelForm):
    """Everything about how students take the activity, checked together."""

    bound_field_class = LinkedBoundField

    # The settings page shows the fields in these groups, each a fieldset with its legend.
    GROUPS = (
        (_("Availability"), ("available_from", "available_until", "due_at", "late_policy")),
        (_("Attempts"), ("max_attempts", "allow_student_reopen", "email_receipt")),
        (_("Marks and review"), ("show_score", "allow_review", "review_from")),
        (_("Grades to the LMS"), ("grading_method", "include_incomplete", "report_when", "report_after_due")),
        (_("Names on your pages"), ("identifier_field",)),
    )

    available_from = _when(_("Opens at"), _("Empty: open as soon as there is an exam."))
    available_until = _when(_("Closes at"), _("Empty: never closes. Attempts cannot be started or resumed after this; attempts still open are ended then, keeping what was saved."))
    due_at = _when(_("Due at"), _("After it, answers are refused or accepted and marked late, as chosen below."))
    late_policy = forms.ChoiceField(label=_("After the due date"), choices=LatePolicy.choices, required=False)
    review_from = _when(_("Review allowed from"), _("Empty: as soon as an attempt ends."))
    identifier_field = forms.ChoiceField(
        label=_("Identify students by"), required=False,
        choices=[("", _("The LMS's choice"))] + list(IdentifierField.choices),
        help_text=_("Shown next to each student's name on the instructor's pages and in CSV files."))
    max_attempts = forms.IntegerField(label=_("Attempts allowed"), min_value=0, max_value=1000,
                                      help_text=_("0 means unlimited. Test runs never count."))

    class Meta:
        model = ResourceSettings
        fields = ["available_from", "available_until", "due_at", "late_policy", "report_after_due", "max_attempts", "allow_review", "allow_student_reopen", "review_from",
                  "show_score", "grading_method", "include_incomplete", "report_when", "email_receipt", "identifier_field"]
        labels = {
            "allow_review": _("Students may review their finished attempts"),
            "show_score": _("Show students their marks"),
            "grading_method": _("A student's grade is their"),
            "include_incomplete": _("Count attempts the student has not completed"),
            "report_when": _("Send grades to the LMS"),
            "email_receipt": _("E-mail students a receipt when they complete an attempt"),
            "report_after_due": _("Send grades that change after the due date to the LMS"),
            "allow_student_reopen": _("Students may re-open their own finished attempts while the activity is open"),
        }
        # What Numbas itself can be told (scorm-storage.js reads numbas.review_allowed, not
        # score settings): said next to the settings it limits.
        help_texts = {
            "allow_student_reopen": _("A re-opened attempt carries on from where it ended, with the exam's own time "
                                      "limit; its grade is computed again when it ends."),
            "email_receipt": _("The receipt has a code the student can quote; you can check it on the "
                               "“Check a receipt” page."),
            "include_incomplete": _("Otherwise an attempt counts once the student ends it or it is ended at the "
                                    "closing time."),
            "report_after_due": _("Otherwise you send them yourself from the Grades tab."),
            "grading_method": _("When a student has several attempts."),
            "report_when": _("Only when the LMS gave this activity a gradebook column."),
            "show_score": _(
                "This hides marks on this site's pages (the student's page, receipts, their grade). The exam "
                "itself cannot be told: Numbas shows scores and its results page as the exam was made in the "
                "Numbas editor (“Show current score?”, “Show maximum score?” and "
                "“Show results page”). To hide marks inside the exam too, change those settings in "
                "the editor and upload the exam again."),
            "allow_review": _(
                "Before review is allowed, students cannot open their ended attempts, and the exam is told "
                "review is not allowed. Whether Numbas shows answers and marks as soon as an attempt ends is "
                "set in the Numbas editor (“Enter review mode immediately”): this site cannot change it."),
        }

    def groups(self):
        """(legend, [bound fields]) in the order the page shows them; every field is in one group."""
        return [(legend, [self[name] for name in names if name in self.fields]) for legend, names in self.GROUPS]

    def clean(self):
        data = super().clean()
        data["late_policy"] = data.get("late_policy") or LatePolicy.ACCEPT
        opens, closes, due = data.get("available_from"), data.get("available_until"), data.get("due_at")
        if opens and closes and opens >= closes:
            self.add_error("available_until", _("The closing time must be after the opening time."))
        if due and opens and due <= opens:
            self.add_error("due_at", _("The due time must be after the opening time."))
        if due and closes and due > closes:
            self.add_error("due_at", _("The due time cannot be after the closing time: students could not start by then."))
        if data.get("review_from") and not data.get("allow_review"):
            self.add_error("review_from", _("Allow review first, or leave this empty."))
        return data
