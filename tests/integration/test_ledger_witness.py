"""The witness: tlog-witness status codes, cosignatures, and a split-view attempt end to end."""

from __future__ import annotations

import base64
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import candour.ledger as ledger
from candour.config import Settings
from candour.home import Home
from candour.ledger import checkpoint as cpmod
from candour.ledger import note, tree
from candour.ledger.log import Log
from candour.ledger.witness import SIZE_CONTENT_TYPE, Witness, create_app

ORIGIN = "test.candour.example/log"


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


@pytest.fixture
def keys() -> tuple[note.Signer, note.Signer]:
    return note.generate(ORIGIN), note.generate("witness.test/w", note.COSIGNATURE_V1)


def _request(old: int, proof: list[bytes], signed: bytes) -> bytes:
    return (
        f"old {old}\n".encode() + b"".join(_b64(h).encode() + b"\n" for h in proof) + b"\n" + signed
    )


def test_status_codes_follow_the_spec(
    tmp_path: Path, keys: tuple[note.Signer, note.Signer]
) -> None:
    log_key, wit_key = keys
    witness = Witness(wit_key, {ORIGIN: [log_key.verifier]}, tmp_path / "w")
    leaves = [tree.leaf_hash(b"%d" % i) for i in range(10)]
    mem = tree.MemoryTree(leaves)

    def signed(size: int, key: note.Signer = log_key, origin: str = ORIGIN) -> bytes:
        return cpmod.sign(cpmod.Checkpoint(origin, size, mem.root(size)), [key])

    assert witness.add_checkpoint(b"nonsense").status == 400
    assert witness.add_checkpoint(_request(0, [], signed(4, origin="other/log"))).status == 404
    stranger = note.generate(ORIGIN)
    assert witness.add_checkpoint(_request(0, [], signed(4, stranger))).status == 403
    assert witness.add_checkpoint(_request(5, [], signed(4))).status == 400
    reply = witness.add_checkpoint(_request(0, [], signed(4)), timestamp=1_700_000_000)
    assert reply.status == 200
    cosigned = signed(4) + reply.body
    opened = note.open_note(cosigned, [wit_key.verifier])
    assert opened.verified[0].signature[:8] == (1_700_000_000).to_bytes(8, "big")
    # Wrong old size: 409 with the size it has, as text/x.tlog.size.
    stale = witness.add_checkpoint(_request(0, [], signed(7)))
    assert (stale.status, stale.content_type, stale.body) == (409, SIZE_CONTENT_TYPE, b"4\n")
    # A proof that does not verify: 422, and the attempt is kept as evidence.
    bad = [bytes(32)] * len(tree.consistency_proof(4, 7, mem.node))
    assert witness.add_checkpoint(_request(4, bad, signed(7))).status == 422
    assert list((tmp_path / "w" / "evidence").iterdir())
    good = tree.consistency_proof(4, 7, mem.node)
    assert witness.add_checkpoint(_request(4, good, signed(7))).status == 200
    # Same size, other root: a split view, refused with 409.
    other = cpmod.sign(cpmod.Checkpoint(ORIGIN, 7, bytes(32)), [log_key])
    assert witness.add_checkpoint(_request(7, [], other)).status == 409
    # State survives a restart: a new witness object refuses to go back.
    again = Witness(wit_key, {ORIGIN: [log_key.verifier]}, tmp_path / "w")
    assert again.add_checkpoint(_request(4, good, signed(7))).status == 409
    assert again.latest(ORIGIN) is not None and again.latest(ORIGIN)["size"] == 7  # type: ignore[index]


@pytest.fixture
def witness_server(tmp_path: Path) -> Iterator[tuple[str, Home]]:
    """This home's witness, served over real HTTP by uvicorn on a free port."""
    home = Home(tmp_path / "main")
    home.create_directories()
    ledger.ensure_keys(home, ORIGIN, "witness.test/w")
    from candour.cli.witness import build_witness

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(build_witness(home.root)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "witness did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", home
    server.should_exit = True
    thread.join(5)


def test_split_view_attempt_end_to_end(tmp_path: Path, witness_server: tuple[str, Home]) -> None:
    url, home = witness_server
    wvkey = home.witness_verifier_key.read_text().strip()
    witnessed = [f"{wvkey} {url}"]
    main = Settings(home=home.root, log_origin=ORIGIN, log_witnesses=witnessed)
    log = Log.open(main)
    log.append([b"a", b"b", b"c"])
    wverifier = note.parse_vkey(wvkey)
    published = (ledger.public_dir(home) / "checkpoint").read_bytes()
    assert note.open_note(published, [wverifier]).verified  # cosigned by the witness
    # The operator forks: a copy of the home (same keys) will show a different history.
    fork_root = tmp_path / "fork"
    shutil.copytree(home.root, fork_root)
    fork = Log.open(Settings(home=fork_root, log_origin=ORIGIN, log_witnesses=witnessed))
    log.append([b"d", b"e"])
    assert note.open_note((ledger.public_dir(home) / "checkpoint").read_bytes(), [wverifier])
    fork.append([b"D", b"E"])  # same size 5, different root
    fork.append([b"F"])  # size 6, not consistent with the witnessed size 5
    forked = (fork_root / "ledger" / "public" / "checkpoint").read_bytes()
    cp, _ = cpmod.open_checkpoint(forked, [ledger.verifier_key(home)])
    assert cp.size == 6  # the log key signed it...
    with pytest.raises(note.NoteError):
        note.open_note(forked, [wverifier])  # ...but the witness refused to cosign it
    evidence = list((home.ledger / "witness" / "evidence").glob("*.why"))
    reasons = {p.read_text() for p in evidence}
    assert "same size, different root" in reasons
    assert any(r.startswith("consistency proof failed") for r in reasons)
    # The honest branch keeps being cosigned.
    log.append([b"f"])
    honest = (ledger.public_dir(home) / "checkpoint").read_bytes()
    assert cpmod.open_checkpoint(honest, [wverifier])[0].size == 6
