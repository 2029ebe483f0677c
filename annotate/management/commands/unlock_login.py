"""`python manage.py unlock_login USERNAME` — lift a login lockout before it expires (config/login_throttle.py)."""
from django.core.management.base import BaseCommand

from config import login_throttle


class Command(BaseCommand):
    help = "Forget the failed-login count of a username, ending its lockout."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        login_throttle.reset(username)
        self.stdout.write(f"{username}: failed-login count cleared")
