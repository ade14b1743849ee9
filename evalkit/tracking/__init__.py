"""MLflow as the metric store: logging runs, the leaderboard, sync, export and import.

Nothing here imports mlflow at import time; each function imports it when it talks to MLflow.
"""

from __future__ import annotations

from evalkit.tracking.errors import TrackingError, TrackingUnavailable
from evalkit.tracking.mlflow_log import log_run
from evalkit.tracking.uri import experiment_name, resolve_tracking_uri

__all__ = ["TrackingError", "TrackingUnavailable", "experiment_name", "log_run", "resolve_tracking_uri"]
