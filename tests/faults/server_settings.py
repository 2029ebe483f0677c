"""Settings of the servers the fault tests start (gunicorn, workers): the test settings, with the
agreement trigger's circuit breaker closing after one second instead of thirty."""
from config.settings_test import *  # noqa: F401,F403

QUALITY_TRIGGER_QUIET_S = 1.0
