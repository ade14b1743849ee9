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
    (
        2,
        # typed outcomes: a score is ok / not_applicable / error(kind); a case is completed / errored /
        # cancelled. Old rows are back-filled from the text prefixes they were written with.
        """
        ALTER TABLE scores ADD COLUMN outcome VARCHAR;
        ALTER TABLE scores ADD COLUMN error_kind VARCHAR;
        UPDATE scores SET
            outcome = CASE
                WHEN value IS NOT NULL THEN 'ok'
                WHEN error LIKE 'not_scored: target failed%' OR error LIKE 'not_scored: cancelled%'
                     OR error LIKE 'not_scored: the test failed%' THEN 'error'
                WHEN error LIKE 'not_scored:%' THEN 'not_applicable'
                ELSE 'error' END,
            error_kind = CASE
                WHEN value IS NOT NULL THEN NULL
                WHEN error LIKE 'not_scored: cancelled%' THEN 'cancelled'
                WHEN error LIKE 'not_scored: target failed%' OR error LIKE 'not_scored: the test failed%'
                     THEN 'target_exception'
                WHEN error LIKE 'not_scored:%' THEN NULL
                WHEN error LIKE 'provider_error%' THEN 'provider'
                WHEN error LIKE 'judge_output_invalid%' THEN 'judge_output_invalid'
                WHEN error LIKE 'timeout%' THEN 'timeout'
                ELSE 'scorer_exception' END;
        ALTER TABLE case_results ADD COLUMN outcome VARCHAR;
        ALTER TABLE case_results ADD COLUMN error_kind VARCHAR;
        UPDATE case_results SET
            error_kind = CASE
                WHEN status = 'cancelled' THEN 'cancelled'
                WHEN status = 'error' AND error LIKE 'timeout%' THEN 'timeout'
                WHEN status = 'error' THEN 'target_exception'
                ELSE NULL END,
            outcome = CASE
                WHEN status = 'cancelled' THEN 'cancelled'
                WHEN status = 'error' THEN 'errored'
                WHEN EXISTS (SELECT 1 FROM scores s WHERE s.run_id = case_results.run_id
                             AND s.case_id = case_results.case_id AND s.repeat = case_results.repeat
                             AND s.outcome = 'error') THEN 'errored'
                ELSE 'completed' END;
        """,
    ),
    (
        3,
        # spans the OTLP receiver got for a trace no case running in that process owns (a finished
        # case's, or one no run started): the spans columns plus why and when, never read as a case's
        """
        CREATE TABLE unattributed_spans AS
            SELECT *, NULL::VARCHAR AS reason, NULL::TIMESTAMPTZ AS received_at FROM spans LIMIT 0;
        """,
    ),
    (
        4,
        # judge calibration: human labels (one row per human judgement of a case by a judge's criterion,
        # ``value`` as JSON text) and each measured agreement of a judge@version × model with them
        """
        CREATE TABLE human_labels (
            case_id VARCHAR,
            content_hash VARCHAR,
            repeat INTEGER NOT NULL,
            judge VARCHAR NOT NULL,
            judge_version VARCHAR,
            value VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            labelled_at TIMESTAMPTZ,
            run_id VARCHAR,
            note VARCHAR,
            source VARCHAR,
            imported_at TIMESTAMPTZ
        );
        CREATE TABLE judge_calibrations (
            calibration_id VARCHAR NOT NULL,
            judge VARCHAR NOT NULL,
            judge_version VARCHAR NOT NULL,
            prompt_sha256 VARCHAR,
            model VARCHAR NOT NULL,
            output_kind VARCHAR,
            threshold DOUBLE,
            items INTEGER,
            agreement DOUBLE,
            agreement_metric VARCHAR,
            sensitivity DOUBLE,
            specificity DOUBLE,
            tp INTEGER,
            fp INTEGER,
            fn INTEGER,
            tn INTEGER,
            report JSON,
            labels_sha256 VARCHAR,
            run_id VARCHAR,
            source VARCHAR,
            created_at TIMESTAMPTZ
        );
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]
