"""Ordered schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            suite VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            target VARCHAR,
            dataset_path VARCHAR,
            dataset_sha256 VARCHAR,
            cases_total BIGINT,
            repeats INTEGER DEFAULT 1,
            concurrency INTEGER,
            git_commit VARCHAR,
            git_dirty BOOLEAN,
            evalkit_version VARCHAR,
            config JSON,
            summary JSON,
            gate JSON,
            mlflow_run_id VARCHAR,
            parent_run_id VARCHAR
        );
        CREATE TABLE case_results (
            run_id VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            input JSON,
            expected JSON,
            output JSON,
            error VARCHAR,
            latency_ms DOUBLE,
            input_tokens BIGINT,
            output_tokens BIGINT,
            cost_usd DOUBLE,
            llm_calls INTEGER,
            trace_id VARCHAR,
            started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            tags VARCHAR[],
            tool_calls JSON,
            metadata JSON
        );
        CREATE TABLE scores (
            run_id VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            value DOUBLE,
            is_bool BOOLEAN,
            passed BOOLEAN,
            rationale VARCHAR,
            error VARCHAR,
            metadata JSON
        );
        CREATE TABLE spans (
            trace_id VARCHAR NOT NULL,
            span_id VARCHAR NOT NULL,
            parent_span_id VARCHAR,
            name VARCHAR,
            kind VARCHAR,
            start_time TIMESTAMPTZ,
            end_time TIMESTAMPTZ,
            duration_ms DOUBLE,
            status_code VARCHAR,
            status_message VARCHAR,
            service_name VARCHAR,
            run_id VARCHAR,
            case_id VARCHAR,
            operation VARCHAR,
            provider VARCHAR,
            request_model VARCHAR,
            response_model VARCHAR,
            input_tokens BIGINT,
            output_tokens BIGINT,
            tool_name VARCHAR,
            error_type VARCHAR,
            attributes JSON,
            events JSON,
            resource JSON
        );
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]
