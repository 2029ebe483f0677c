from pathlib import Path

from django.apps import AppConfig


class MiningConfig(AppConfig):
    name = "mining"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings

        from .text.tokenize import set_jieba_cache_dir

        set_jieba_cache_dir(Path(settings.DATA_DIR) / "cache" / "jieba")
