"""Every URL: the admin, login, the API (one router, config/api_urls.py) and each stage's pages."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from annotate import urls as collections
from annotate.export import urls as export
from annotate.judging import urls as judging
from annotate.language import choose_language
from annotate.quality import urls as quality
from config.login_throttle import ThrottledLoginView
from mining import urls as mining
from training import urls as training

urlpatterns = [
    # Pages that do not name an icon (the admin, the API docs) still get one, not a 404 each.
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True), name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", choose_language, name="choose-language"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Pages for people: an anonymous visitor is sent to the login page, not answered 403.
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", login_required(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("api/", include("config.api_urls")),
    path("", include(collections.pages)),
    path("", include(judging.pages)),
    path("", include(quality.pages)),
    path("", include(export.pages)),
    path("", include(mining.pages)),
    path("", include(training.pages)),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
