"""The demo collection's data, written for this project (loaded by `manage.py load_demo`)."""
from pathlib import Path

DEMO_FILE = Path(__file__).with_name("demo.listwise.jsonl")
