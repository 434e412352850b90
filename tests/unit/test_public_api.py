"""The public surface is what the README documents, and nothing else."""

from __future__ import annotations

import bayestream

DOCUMENTED = {
    "BayestreamError",
    "Config",
    "ConfigError",
    "DeadLetter",
    "Engine",
    "Outputs",
    "RawBatch",
    "Reason",
    "StateError",
    "__version__",
    "load_config",
    "parse_config",
}


def test_exported_names_are_the_documented_ones() -> None:
    assert set(bayestream.__all__) == DOCUMENTED
    for name in DOCUMENTED:
        assert hasattr(bayestream, name)


def test_readme_lists_every_export_and_every_reason() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in DOCUMENTED:
        assert f"`{name}`" in readme, name
    for reason in bayestream.Reason:
        assert f"`{reason.value}`" in readme, reason
