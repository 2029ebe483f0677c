"""Fault tests (marker `faults`): real processes -- Celery workers, redis-server, a PostgreSQL
cluster -- killed or restarted. The tiny BERT of the training loop is shared from tests/training_loop."""
from ..training_loop.conftest import tiny_model  # noqa: F401 -- a fixture, used by name
