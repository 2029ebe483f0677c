from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotate import workbench_urls
from annotate.quality import urls as quality_urls
from config.login_throttle import ThrottledLoginView
from training import urls as training_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("annotate.api_urls")),
    path("api/", include(workbench_urls.api)),
    path("api/", include(training_urls.api_urls)),
    path("api/", include(quality_urls.api_patterns)),
    path("", include("annotate.export.urls")),
    path("", include("annotate.urls")),
    path("", include(workbench_urls.pages)),
    path("", include(quality_urls.pages)),
    path("", include("mining.urls")),
    path("", include(training_urls.pages)),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
