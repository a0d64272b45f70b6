"""The Spark engine runs the same pipeline as DuckDB and agrees with it on the same data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from candour.cli.main import app
from candour.config import Settings
from candour.linkage.evaluate import read_truth, score
from candour.linkage.outputs import current_index, latest_run
from candour.store import dispose
from candour.vault import dispose_vault

pytestmark = [pytest.mark.spark, pytest.mark.slow]
runner = CliRunner()


def _cli(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def test_spark_links_a_county_as_well_as_duckdb(tmp_path: Path):
    duck = tmp_path / "duck"
    _cli("init", "--home", str(duck))
    _cli("synth", "--people", "400", "--seed", "8", "--out", str(duck / "synth"))
    _cli("ingest", str(duck / "synth" / "sources.yaml"), "--home", str(duck))
    # The same ingested data in two homes, one linked by each engine.
    spark = tmp_path / "spark"
    shutil.copytree(duck, spark)
    truth = read_truth(duck / "synth" / "truth" / "records.csv")
    quality = {}
    for engine, home in (("duckdb", duck), ("spark", spark)):
        _cli("link", "--engine", engine, "--home", str(home))
        settings = Settings(home=home)
        assert latest_run(settings).engine == engine
        quality[engine] = score(current_index(settings), truth)
        dispose(settings)
        dispose_vault(settings)
    assert quality["duckdb"].pairwise_f1 > 0.98
    assert abs(quality["spark"].pairwise_f1 - quality["duckdb"].pairwise_f1) <= 0.005, quality
    # The Spark run's workspace (decrypted identities, checkpoints) is gone.
    assert not any((spark / "workspaces").iterdir())
