"""Forms of the staff pages. Validation beyond the field types lives in the service it feeds."""
from __future__ import annotations

from django import forms

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
        max_length=64, widget=forms.TextInput(attrs={"list": "collection-slugs", "autocomplete": "off"}),
        help_text="An existing collection, or a new one to create (lower-case letters, digits, - and _).",
    )
    corpus = forms.FileField(required=False, allow_empty_file=True,
                             help_text='BEIR corpus JSONL: {"_id", "title"?, "text"}')
    queries = forms.FileField(required=False, allow_empty_file=True, help_text='BEIR queries JSONL: {"_id", "text"}')
    qrels = forms.FileField(required=False, allow_empty_file=True,
                            help_text="BEIR TSV (query-id corpus-id score) or TREC (qid 0 docid grade)")
    run = forms.FileField(required=False, allow_empty_file=True, help_text="TREC run: qid Q0 docid rank score tag")
    labels = MultipleFileField(required=False, allow_empty_file=True,
                               help_text="Pointwise, pairwise or listwise JSONL; several allowed")

    def existing_slugs(self) -> list[str]:
        return list(Collection.objects.order_by("slug").values_list("slug", flat=True)[:500])

    def files_for_import(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in ("corpus", "queries", "qrels", "run", "labels")}
