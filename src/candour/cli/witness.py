"""``candour witness``: run this home's C2SP tlog-witness. Thin over candour.ledger.witness."""

from __future__ import annotations

from typing import Annotated

import typer

from candour.cli.common import HomeOption, home_of, new_app, settings
from candour.errors import CandourError
from candour.home import read_secret
from candour.ledger import note
from candour.ledger.witness import Witness, create_app

app = new_app("A C2SP tlog-witness that cosigns checkpoints of a log it has checked.")


def build_witness(home: HomeOption = None) -> Witness:
    """The witness of a home: its key, the logs it trusts, its state under ledger/witness/."""
    conf = settings(home)
    the_home = home_of(home)
    try:
        signer = note.parse_skey(read_secret(the_home.witness_key).decode(), (note.COSIGNATURE_V1,))
        trusted = [note.parse_vkey(the_home.log_verifier_key.read_text(), (note.ED25519,))]
        trusted += [note.parse_vkey(v, (note.ED25519,)) for v in conf.witness_logs]
    except FileNotFoundError as exc:
        raise CandourError(f"missing {exc.filename}; run `candour init`") from None
    except note.NoteError as exc:
        raise CandourError(f"bad witness or log key: {exc}") from exc
    logs: dict[str, list[note.Verifier]] = {}
    for verifier in trusted:
        logs.setdefault(verifier.name, []).append(verifier)
    return Witness(signer, logs, the_home.ledger / "witness")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 7380,
    home: HomeOption = None,
) -> None:
    """Serve POST /add-checkpoint (tlog-witness v1.0.0) for the logs this witness trusts."""
    import uvicorn

    witness = build_witness(home)
    typer.echo(f"witness {witness.signer.verifier.vkey()} for {', '.join(witness.logs)}")
    uvicorn.run(create_app(witness), host=host, port=port, log_level="info")
