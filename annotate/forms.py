"""Forms of the staff pages. Validation beyond the field types lives in the service it feeds."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Collection


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name (Django's documented recipe); cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class ImportForm(forms.Form):
    # Empty files pass the fields: the service refuses them with a message that names the file.
    collection = forms.CharField(
        label=_("Collection"), max_length=64,
        widget=forms.TextInput(attrs={"list": "collection-slugs", "autocomplete": "off"}),
        help_text=_("An existing collection, or a new one to create (lower-case letters, digits, - and _)."),
    )
    corpus = forms.FileField(label=_("Corpus"), required=False, allow_empty_file=True,
                             help_text=_('BEIR corpus JSONL: {"_id", "title"?, "text"}'))
    queries = forms.FileField(label=_("Queries"), required=False, allow_empty_file=True,
                              help_text=_('BEIR queries JSONL: {"_id", "text"}'))
    qrels = forms.FileField(label=_("Qrels"), required=False, allow_empty_file=True,
                            help_text=_("BEIR TSV (query-id corpus-id score) or TREC (qid 0 docid grade)"))
    run = forms.FileField(label=_("Run file"), required=False, allow_empty_file=True,
                          help_text=_("TREC run: qid Q0 docid rank score tag"))
    labels = MultipleFileField(label=_("Labels"), required=False, allow_empty_file=True,
                               help_text=_("Pointwise, pairwise or listwise JSONL; several allowed"))
    clicks = MultipleFileField(label=_("Click logs"), required=False, allow_empty_file=True,
                               help_text=_('JSONL, one search per line: {"query_id", "query"?, "shown": '
                                           '[{"doc_id", "position"}], "clicks"?: [{"doc_id", "dwell_s"?}]}; '
                                           'several allowed'))

    def existing_slugs(self) -> list[str]:
        return list(Collection.objects.order_by("slug").values_list("slug", flat=True)[:500])

    def files_for_import(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in ("corpus", "queries", "qrels", "run", "labels", "clicks")}


class CollectionSettingsForm(forms.ModelForm):
    """A collection's judging rules, as staff edit them on its settings page (and set them when
    creating one). The tokenizer is chosen at creation only: the indexes are built with it."""

    class Meta:
        model = Collection
        fields = ["slug", "name", "description", "overlap_k", "lease_minutes", "guideline_version", "judging_view",
                  "tokenizer", "judging_strategy", "task_size", "gold_rate", "agreement_every", "adjudication_alpha",
                  "is_active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        labels = {"slug": _("Slug"), "name": _("Name"), "description": _("Description"),
                  "overlap_k": _("Annotators per candidate (k)"), "lease_minutes": _("Lease (minutes)"),
                  "judging_view": _("Judging view"), "tokenizer": _("Tokenizer"), "gold_rate": _("Gold rate"),
                  "judging_strategy": _("Judge first"), "task_size": _("Candidates per task"),
                  "agreement_every": _("Agreement report every (grades)"),
                  "adjudication_alpha": _("Adjudication below alpha"), "is_active": _("Active")}

    def __init__(self, *args, **kwargs):
        from .judging.guidelines import available_versions

        super().__init__(*args, **kwargs)
        versions = available_versions()
        current = getattr(self.instance, "guideline_version", None)
        choices = sorted(set(versions) | ({current} if current and self.instance.pk else set()))
        self.fields["guideline_version"] = forms.ChoiceField(
            label=_("Guideline version"), choices=[(v, v) for v in choices],
            initial=current or (versions[0] if versions else None),
            help_text=_("a version folder under guidelines/; changing it asks every annotator to read it first"))
        self.fields["adjudication_alpha"].validators.append(_between(-1.0, 1.0))
        for name in ("judging_strategy", "task_size"):  # left out (an older client): keep what it is
            self.fields[name].required = False
        if self.instance.pk:  # fixed once the collection exists: URLs and indexes depend on them
            for name in ("slug", "tokenizer"):
                self.fields[name].disabled = True

    def _kept(self, name: str):
        value = self.cleaned_data.get(name)
        if value in (None, ""):
            return getattr(self.instance, name) if self.instance.pk else Collection._meta.get_field(name).default
        return value

    def clean_judging_strategy(self):
        return self._kept("judging_strategy")

    def clean_task_size(self):
        return self._kept("task_size")

    def save(self, commit=True):
        from django.db import transaction

        from .judging.priorities import mark_collection_stale

        with transaction.atomic():
            collection = super().save(commit=commit)
            if commit and self.instance.pk and {"judging_strategy", "overlap_k"} & set(self.changed_data):
                mark_collection_stale(collection)  # every pair's place, or which pairs are open, changes
        return collection


def _between(low: float, high: float):
    def check(value):
        if not low <= value <= high:
            raise forms.ValidationError(_("must be between %(low)g and %(high)g, got %(value)g")
                                        % {"low": low, "high": high, "value": value})
    return check
