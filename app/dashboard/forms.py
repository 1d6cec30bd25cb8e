from django import forms
from django.utils.translation import gettext_lazy as _

from attempts.services import MAX_EXTRA_ATTEMPTS, MAX_EXTRA_MINUTES


class AccessChangeForm(forms.Form):
    extra_attempts = forms.IntegerField(
        label=_("Extra attempts"), min_value=0, max_value=MAX_EXTRA_ATTEMPTS, required=False, initial=0,
        help_text=_("On top of the activity's maximum (which has no effect when attempts are unlimited)."))
    available_until = forms.DateTimeField(
        label=_("Closes for this student at"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text=_("Leave empty to use the activity's closing time."))
    extra_minutes = forms.IntegerField(
        label=_("Extra exam time (minutes)"), min_value=0, max_value=MAX_EXTRA_MINUTES, required=False, initial=0,
        help_text=_("Added to the exam's duration, also in an attempt that is open now."))
    reason = forms.CharField(label=_("Reason (for your records)"), max_length=500, required=False)

    def clean_extra_attempts(self):
        return self.cleaned_data["extra_attempts"] or 0

    def clean_extra_minutes(self):
        return self.cleaned_data["extra_minutes"] or 0


class RemarkForm(forms.Form):
    part = forms.RegexField(regex=r"^q[0-9]{1,4}p[0-9]{1,4}(g[0-9]{1,4})?$", max_length=20,
                            error_messages={"invalid": _("Choose a part or gap of this exam (like q0p1 or q0p1g0).")})
    score = forms.FloatField(label=_("New mark"), required=False, min_value=0,
                             help_text=_("Empty: go back to the exam's own mark."))
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)
