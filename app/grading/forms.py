from django import forms
from django.utils.translation import gettext_lazy as _

from attempts.models import ResourceSettings
from grading.models import DiscountBehaviour


class GradingSettingsForm(forms.ModelForm):
    class Meta:
        model = ResourceSettings
        fields = ["grading_method", "include_incomplete", "report_when", "email_receipt"]
        labels = {
            "grading_method": _("A student's grade is their"),
            "include_incomplete": _("Count attempts the student has not completed"),
            "report_when": _("Send grades to the LMS"),
            "email_receipt": _("E-mail students a receipt when they complete an attempt"),
        }


class DiscountForm(forms.Form):
    target = forms.RegexField(
        regex=r"^q[0-9]{1,4}(p[0-9]{1,4})?$", max_length=20,
        error_messages={"invalid": _("Choose a question (like q0) or a part (like q0p1) of this exam.")},
    )
    behaviour = forms.ChoiceField(
        choices=[("", _("Counts as normal")), *DiscountBehaviour.choices], required=False,
        error_messages={"invalid_choice": _("Choose how the question counts: as normal, removed, or full marks.")},
    )
