"""The OpenAPI schema describes the collections and import API without a warning."""
from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

OURS = ("annotate/api.py", "annotate/serializers.py", "CollectionListApi", "CollectionDetailApi", "ImportStartApi",
        "ImportJobApi", "ImportUpload")


def test_the_collections_and_import_routes_generate_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    problems = [message for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
                if any(name in message for name in OURS)]
    GENERATOR_STATS.reset()
    assert not problems, problems
    paths = schema["paths"]
    upload = paths["/api/collections/{slug}/imports/"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert set(upload["responses"]) >= {"202", "400"}
    assert "totals" in schema["components"]["schemas"]["CollectionDetailOutput"]["properties"]
    assert {"/api/collections/", "/api/collections/{slug}/", "/api/imports/{job_id}/"} <= set(paths)
