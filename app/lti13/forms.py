from __future__ import annotations

from django import forms
from django.utils.translation import gettext, gettext_lazy as _

from lms.models import Resource

NEW_ACTIVITY = "new"


class DeepLinkingForm(forms.Form):
    """The deep linking picker: a new activity (with a title) or one of the course's."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=100)
    activity = forms.ChoiceField(label=_("The link opens"), widget=forms.RadioSelect,
                                 error_messages={"required": _("Choose a new activity or one of the course's."),
                                                 "invalid_choice": _("Choose a new activity or one of the course's.")})
    title = forms.CharField(label=_("Title"), max_length=500, required=False)

    def __init__(self, *args, activities: list[Resource], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["activity"].choices = [(NEW_ACTIVITY, gettext("New activity"))] + [
            (str(resource.pk), resource.title) for resource in activities]

    def clean(self):
        data = super().clean()
        if data.get("activity") == NEW_ACTIVITY and not data.get("title"):
            self.add_error("title", gettext("Give the new activity a title."))
        return data

    @property
    def resource_id(self) -> int | None:
        """The chosen activity's id; None for a new activity."""
        choice = self.cleaned_data["activity"]
        return None if choice == NEW_ACTIVITY else int(choice)
