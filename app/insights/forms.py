from django import forms
from django.utils.translation import gettext_lazy as _


class StatisticsFilterForm(forms.Form):
    """Which attempts the score figures count: the query string `all=1` counts every attempt
    with a score, `all=0` (the default) only completed ones."""

    all = forms.TypedChoiceField(
        label=_("Attempts counted"),
        choices=[("0", _("Completed attempts")), ("1", _("All attempts with a score"))],
        coerce=lambda value: value == "1",
        required=False,
        empty_value=False,
        widget=forms.RadioSelect,
    )
