"""`evalkit --version`: evalkit's version and the stack's, read from package metadata, nothing imported."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from evalkit.cli import app as app_mod
from tests.fakes.isolated import imported_by


def test_version_lists_evalkit_and_installed_stack() -> None:
    app_mod._mount()
    result = CliRunner().invoke(app_mod.app, ["--version"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"evalkit {version('evalkit')}"
    for dist in ("duckdb", "litellm"):  # core dependencies: always installed
        assert f"{dist} {version(dist)}" in lines
    assert any(line.startswith(("mlflow ", "mlflow-skinny ")) for line in lines)


def test_version_skips_what_is_not_installed(monkeypatch) -> None:
    from importlib import metadata

    real = metadata.version

    def fake(dist: str) -> str:
        if dist in ("mlflow", "litellm"):
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(metadata, "version", fake)
    text = app_mod.version_text()
    assert not any(line.startswith(("mlflow ", "litellm ")) for line in text.splitlines())
    assert text.splitlines()[0].startswith("evalkit ")


def test_version_imports_none_of_the_stack() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['evalkit', '--version']\n"
        "from evalkit.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    out, imported = imported_by(code, ("mlflow", "duckdb", "litellm"))
    assert out.splitlines()[0].startswith("evalkit ")
    assert imported == []
