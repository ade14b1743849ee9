"""``evalkit ui``: a live, read-only dashboard over MLflow and the observability store."""
