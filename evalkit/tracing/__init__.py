"""Tracing: OpenTelemetry spans for every case, stored in the workspace DuckDB file."""
