from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy as _

from attempts.models import MAX_EXTRA_ATTEMPTS, MAX_EXTRA_MINUTES, MAX_EXTRA_PERCENT, IdentifierKind
from attempts.services import MAX_LIST_ENTRIES, TERM_FIELDS, access_list_entries

_MOMENT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


def _moment(label, help_text):
    return forms.DateTimeField(
        label=label, required=False, help_text=help_text, input_formats=_MOMENT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))


def _entries_help() -> str:
    """Interpolated when shown, so that it is in the reader's language."""
    return gettext("One per line or separated by commas, at most %(max)d. People who have not opened the activity "
                   "yet get the change when they first do.") % {"max": MAX_LIST_ENTRIES}

class AccessChangeForm(forms.Form):
    extra_attempts = forms.IntegerField(
        label=_("Extra attempts"), min_value=0, max_value=MAX_EXTRA_ATTEMPTS, required=False, initial=0,
        help_text=_("On top of the activity's maximum (which has no effect when attempts are unlimited)."))
    available_from = _moment(_("Opens for this student at"),
                             _("Leave empty to use the activity's opening time. It may be earlier."))
    available_until = _moment(_("Closes for this student at"), _("Leave empty to use the activity's closing time."))
    due_at = _moment(_("Due for this student at"),
                     _("Leave empty to use the activity's due date. The activity's late policy applies to it."))
    extra_minutes = forms.IntegerField(
        label=_("Extra exam time (minutes)"), min_value=0, max_value=MAX_EXTRA_MINUTES, required=False, initial=0,
        help_text=_("Added to the exam's duration, also in an attempt that is open now."))
    extra_percent = forms.IntegerField(
        label=_("Or extra exam time (% of the exam's duration)"), min_value=0, max_value=MAX_EXTRA_PERCENT,
        required=False, initial=0,
        help_text=_("For example 50 gives 15 more minutes in a 30-minute exam. Give minutes or a percentage, "
                    "not both."))
    time_limit_off = forms.BooleanField(
        label=_("No time limit for this student"), required=False,
        help_text=_("The exam's time limit does not apply; the closing time still does."))
    reason = forms.CharField(label=_("Reason (for your records)"), max_length=500, required=False)

    def clean_extra_attempts(self):
        return self.cleaned_data["extra_attempts"] or 0

    def clean_extra_minutes(self):
        return self.cleaned_data["extra_minutes"] or 0

    def clean_extra_percent(self):
        return self.cleaned_data["extra_percent"] or 0

    def clean(self):
        data = super().clean()
        if data.get("extra_minutes") and data.get("extra_percent"):
            self.add_error("extra_percent", _("Give extra time either in minutes or as a percentage, not both."))
        return data

    def terms(self) -> dict:
        """The access change's terms and reason, as attempts.services takes them."""
        return {name: self.cleaned_data[name] for name in (*TERM_FIELDS, "reason")}


class AccessChangeListForm(AccessChangeForm):
    """One access change for the students chosen on the Students page and a pasted list."""

    students = forms.TypedMultipleChoiceField(coerce=int, required=False, widget=forms.MultipleHiddenInput)
    entries = forms.CharField(
        label=_("Paste usernames, e-mail addresses or LMS user ids"), required=False, max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=lazy(_entries_help, str)())
    kind = forms.ChoiceField(label=_("The list contains"), choices=IdentifierKind.choices,
                             initial=IdentifierKind.ANY, required=False)

    field_order = ["entries", "kind"]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "list_%s")
        super().__init__(*args, **kwargs)
        # Any whole number is a choice here; attempts.services checks the students are this activity's.
        chosen = self.data.getlist("students") if hasattr(self.data, "getlist") else []
        self.fields["students"].choices = [(value, value) for value in chosen]

    def clean_kind(self):
        return self.cleaned_data["kind"] or IdentifierKind.ANY

    def clean_entries(self):
        entries = access_list_entries(self.cleaned_data["entries"])
        if len(entries) > MAX_LIST_ENTRIES:
            raise forms.ValidationError(
                _("A list can have at most %(max)d entries; this one has %(count)d. Split it into smaller lists.")
                % {"max": MAX_LIST_ENTRIES, "count": len(entries)})
        return entries

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("students") and not data.get("entries"):
            raise forms.ValidationError(_("Choose students or paste a list of usernames, e-mail addresses or LMS "
                                          "user ids."))
        return data


class RemarkForm(forms.Form):
    part = forms.RegexField(regex=r"^q[0-9]{1,4}p[0-9]{1,4}(g[0-9]{1,4})?$", max_length=20,
                            error_messages={"invalid": _("Choose a part or gap of this exam.")})
    score = forms.FloatField(label=_("New mark"), required=False, min_value=0,
                             help_text=_("Empty: go back to the exam's own mark."),
                             error_messages={"invalid": _("Give the new mark as a number, like 1 or 0.5.")})
    reason = forms.CharField(label=_("Why this mark changes (kept in the attempt's history)"), max_length=500,
                             required=False)
    confirmed = forms.BooleanField(required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Note for instructors (kept in the attempt's history)"), max_length=500,
                             required=False)
    confirmed = forms.BooleanField(required=False)
