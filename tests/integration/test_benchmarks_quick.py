"""Every benchmark runs in quick mode, so the benchmark code cannot rot between full runs."""

import pytest
from benchmarks import run as runner
from benchmarks.common import Result


def test_results_table_and_doc_block():
    results = [
        Result("x throughput", 1234.5, "rows/s", ">= 1,000 rows/s", True, "hashlib", 2000.0, 0.62),
        Result("y", 3.0, "s", "<= 2 s", False),
    ]
    table = runner.table(results)
    assert (
        "| x throughput | 1,234 rows/s | >= 1,000 rows/s | yes | hashlib (2,000) | 0.62 |" in table
    )
    assert "| **no** |" in table
    doc = f"intro\n{runner.BEGIN}\nold\n{runner.END}\noutro\n"
    assert runner.rewrite_doc(doc, "new") == f"intro\n{runner.BEGIN}\nnew\n{runner.END}\noutro\n"


# Benchmarks that need more than the embedded default carry the markers of what they need.
NEEDS = {"scaleout": [pytest.mark.spark, pytest.mark.postgres]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=NEEDS.get(n, [])) for n in runner.discover()]
)
def test_benchmark_quick_mode(name: str):
    import importlib

    module = importlib.import_module(f"benchmarks.bench_{name}")
    results = module.run(quick=True)
    assert results, f"bench_{name} returned no results"
    for result in results:
        assert isinstance(result, Result)
        assert result.figure > 0, result
        assert result.target
