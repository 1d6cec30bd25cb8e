from django import forms
from django.utils.translation import gettext_lazy as _

from people import zones


def _zone_choices():
    return [("", _("The time zone of my browser"))] + [(name, name.replace("_", " ")) for name in zones.choices()]


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=_("Your time zone"), required=False, choices=_zone_choices,
        help_text=_("Every time on these pages is shown in this zone, and times you enter are read in it."))
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_time_zone(self):
        zone = self.cleaned_data["time_zone"]
        if zone and not zones.is_valid(zone):
            raise forms.ValidationError(_("Choose a time zone from the list."))
        return zone
