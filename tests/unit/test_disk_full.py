import errno
import sqlite3

from typer.testing import CliRunner

from candour.cli.common import new_app
from candour.errors import is_disk_full


def test_full_disk_is_recognised_through_the_cause_chain():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.ENOENT, "No such file or directory"))
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("commit failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(ValueError("bad value"))


def test_the_cli_reports_a_full_disk_in_one_line_with_exit_2():
    app = new_app("test")

    @app.command()
    def fill() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    @app.command()
    def other() -> None:
        raise ValueError("a bug")

    result = CliRunner().invoke(app, ["fill"])
    assert result.exit_code == 2
    assert "disk holding the data home is full" in result.output
    assert "check --repair" in result.output
    bug = CliRunner().invoke(app, ["other"])
    assert isinstance(bug.exception, ValueError)  # bugs keep their traceback
