"""Services of the annotate app that change state (keyword-only, typed); one module per area."""
