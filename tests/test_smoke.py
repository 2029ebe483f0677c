def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_tests_never_use_the_redis_database_of_make_run():
    from django.conf import settings

    from tests.conftest import TEST_REDIS_DB

    for url in (settings.REDIS_URL, settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND):
        assert url.endswith(f"/{TEST_REDIS_DB}"), url
