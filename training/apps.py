import os

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The web process `make run` starts (config.stack sets the variable for it alone) loads the
        # serving models in the background, so the first rerank request does not wait for them.
        if os.environ.get("WARM_RERANKER") == "1":
            from .rerank import warm_in_background

            warm_in_background()
