from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .language import remember_on_login

        user_logged_in.connect(remember_on_login, dispatch_uid="annotate.language.remember_on_login")
