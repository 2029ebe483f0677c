"""The one API router: every route under /api/, in the order of the flow (collections and
import -> judging -> quality -> export -> mining -> training and serving). Each stage lists its
routes as `api` in its own urls module; the pages are mounted the same way by config/urls.py."""
from annotate import urls as collections
from annotate.export import urls as export
from annotate.judging import urls as judging
from annotate.quality import urls as quality
from mining import urls as mining
from training import urls as training

urlpatterns = [*collections.api, *judging.api, *quality.api, *export.api, *mining.api, *training.api]
