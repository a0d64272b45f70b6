"""``candour ledger`` and ``candour witness`` through the real CLI app."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import candour.ledger as ledger
from candour.cli.main import app
from candour.config import Settings
from candour.home import Home
from candour.ledger import entries, note, tree

ORIGIN = "cli.candour.example/log"
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("CANDOUR_LOG_ORIGIN", ORIGIN)
    h = Home(tmp_path / "home")
    h.create_directories()
    ledger.ensure_keys(h, ORIGIN, "witness.cli.example/w")
    conf = Settings(home=h.root, log_origin=ORIGIN)
    digest = "ab" * 32
    for i in range(5):
        ledger.record(
            "ingest",
            {"source": f"src-{i}", "file_hash": digest, "rows": i, "rejected": 0},
            settings=conf,
        )
    return h


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_checkpoint_is_printed_exactly(home: Home) -> None:
    out = run("ledger", "checkpoint", "--home", str(home.root))
    assert out.encode() == (ledger.public_dir(home) / "checkpoint").read_bytes()
    assert out.startswith(f"{ORIGIN}\n5\n")


def test_vkey(home: Home) -> None:
    out = run("ledger", "vkey", "--home", str(home.root)).strip()
    assert out == home.log_verifier_key.read_text().strip()
    assert note.parse_vkey(out).name == ORIGIN


def test_entry_raw_and_json(home: Home) -> None:
    raw = runner.invoke(app, ["ledger", "entry", "2", "--raw", "--home", str(home.root)])
    assert raw.exit_code == 0
    assert raw.stdout_bytes == ledger.entry(2, settings=Settings(home=home.root))
    shown = json.loads(run("ledger", "entry", "2", "--home", str(home.root)))
    assert shown["entry"]["source"] == "src-2"
    assert base64.b64decode(shown["leaf_hash"]) == tree.leaf_hash(raw.stdout_bytes)
    entries.decode(raw.stdout_bytes)  # canonical and valid


def test_proofs_print_json_that_verifies(home: Home) -> None:
    inc = json.loads(run("ledger", "proof", "inclusion", "3", "--home", str(home.root)))
    assert set(inc) == {"index", "tree_size", "leaf_hash", "hashes", "root"}
    assert inc["tree_size"] == 5
    tree.verify_inclusion(
        inc["index"],
        inc["tree_size"],
        base64.b64decode(inc["leaf_hash"]),
        [base64.b64decode(h) for h in inc["hashes"]],
        base64.b64decode(inc["root"]),
    )
    older = json.loads(
        run("ledger", "proof", "inclusion", "1", "--size", "2", "--home", str(home.root))
    )
    assert older["tree_size"] == 2
    con = json.loads(run("ledger", "proof", "consistency", "2", "5", "--home", str(home.root)))
    assert set(con) == {"old_size", "new_size", "old_root", "new_root", "hashes"}
    assert con["old_root"] == older["root"] and con["new_root"] == inc["root"]
    tree.verify_consistency(
        2,
        5,
        [base64.b64decode(h) for h in con["hashes"]],
        base64.b64decode(con["old_root"]),
        base64.b64decode(con["new_root"]),
    )


def test_verify_ok_then_names_tampered_file(home: Home, tmp_path: Path) -> None:
    out = run("ledger", "verify", "--full", "--home", str(home.root))
    assert out.startswith(f"OK {ORIGIN} size 5")
    vkey_file = tmp_path / "log.vkey"
    vkey_file.write_text(home.log_verifier_key.read_text())
    run(
        "ledger",
        "verify",
        "--from",
        str(ledger.public_dir(home)),
        "--vkey",
        str(vkey_file),
        "--home",
        str(home.root),
    )
    bundle = ledger.public_dir(home) / "tile/entries/000.p/5"
    data = bytearray(bundle.read_bytes())
    data[10] ^= 0x20
    bundle.write_bytes(bytes(data))
    result = runner.invoke(app, ["ledger", "verify", "--full", "--home", str(home.root)])
    assert result.exit_code == 2
    assert "tile/entries/000.p/5" in result.output
    assert "Traceback" not in result.output


def test_user_errors_exit_2_with_one_line(home: Home) -> None:
    for args in (
        ["ledger", "entry", "99"],
        ["ledger", "proof", "inclusion", "7"],
        ["ledger", "proof", "consistency", "4", "2"],
        ["ledger", "verify", "--vkey", "nobody+00000000+AAAA"],
    ):
        result = runner.invoke(app, [*args, "--home", str(home.root)])
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_every_command_has_help() -> None:
    for args in (["ledger"], ["ledger", "proof"], ["witness"]):
        out = runner.invoke(app, [*args, "--help"])
        assert out.exit_code == 0
    for cmd in (
        ["ledger", "checkpoint"],
        ["ledger", "vkey"],
        ["ledger", "entry"],
        ["ledger", "proof", "inclusion"],
        ["ledger", "proof", "consistency"],
        ["ledger", "verify"],
        ["witness", "serve"],
    ):
        out = runner.invoke(app, [*cmd, "--help"])
        assert out.exit_code == 0 and "--home" in out.stdout, cmd


def test_verify_from_an_http_url(home: Home) -> None:
    import functools
    import http.server
    import threading

    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(ledger.public_dir(home))
    )
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        out = run("ledger", "verify", "--full", "--from", url, "--home", str(home.root))
        assert out.startswith(f"OK {ORIGIN} size 5")
        (ledger.public_dir(home) / "tile/0/000.p/5").unlink()
        result = runner.invoke(app, ["ledger", "verify", "--from", url, "--home", str(home.root)])
        assert result.exit_code == 2 and "tile/0/000.p/5: missing" in result.output
    finally:
        server.shutdown()
