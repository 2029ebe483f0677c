"""Browser helpers; the `browser` and `page` fixtures live in tests/conftest.py (one Playwright per run)."""
from ..conftest import browser_login as login  # noqa: F401
