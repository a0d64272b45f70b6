"""``candour ledger``: read, prove and verify the public transparency log. Thin over the ledger."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from candour import ledger
from candour.cli.common import HomeOption, home_of, new_app, settings
from candour.errors import CandourError
from candour.ledger import entries, note, tree, verify
from candour.ledger.log import CHECKPOINT

app = new_app("The public transparency log: checkpoints, entries, proofs and verification.")
proof_app = new_app("Inclusion and consistency proofs, as JSON with base64 hashes.")
app.add_typer(proof_app, name="proof")


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2))


@app.command("checkpoint")
def checkpoint(home: HomeOption = None) -> None:
    """Print the latest signed checkpoint, exactly as published."""
    path = ledger.public_dir(home_of(home)) / CHECKPOINT
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CandourError(f"no checkpoint at {path}: nothing has been logged yet") from None
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@app.command("vkey")
def vkey(home: HomeOption = None) -> None:
    """Print the log's verifier key (name+keyid+base64), for auditors and witnesses."""
    typer.echo(ledger.verifier_key(home_of(home)).vkey())


@app.command("entry")
def entry(
    index: Annotated[int, typer.Argument(help="The entry's index, from 0.")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the exact leaf bytes.")] = False,
    home: HomeOption = None,
) -> None:
    """Print entry INDEX: its JSON and leaf hash, or with --raw the exact bytes that were hashed."""
    data = ledger.entry(index, settings=settings(home))
    if raw:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        body: Any = entries.decode(data)
    except CandourError:
        body = data.decode("utf-8", "replace")
    leaf = base64.b64encode(tree.leaf_hash(data)).decode()
    _print_json({"index": index, "leaf_hash": leaf, "entry": body})


@proof_app.command("inclusion")
def inclusion(
    index: Annotated[int, typer.Argument(help="The entry's index.")],
    size: Annotated[
        int | None, typer.Option("--size", help="Tree size (default: the published size).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Print the inclusion proof of entry INDEX: index, tree_size, leaf_hash, hashes, root."""
    _print_json(ledger.inclusion_proof(index, size, settings=settings(home)).to_json())


@proof_app.command("consistency")
def consistency(
    old: Annotated[int, typer.Argument(help="The older tree size.")],
    new: Annotated[int, typer.Argument(help="The newer tree size.")],
    home: HomeOption = None,
) -> None:
    """Print the consistency proof from tree size OLD to NEW."""
    _print_json(ledger.consistency_proof(old, new, settings=settings(home)).to_json())


@app.command("verify")
def verify_cmd(
    full: Annotated[
        bool, typer.Option("--full", help="Check every tile and entry bundle, not just the edge.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--from", help="Published log directory or http(s) URL (default: this home's)."
        ),
    ] = None,
    vkey_opt: Annotated[
        str | None,
        typer.Option("--vkey", help="The log's verifier key, or a file holding it."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Check the published log as an outside auditor would, naming the first file that fails.

    Checks the checkpoint signature, the tiles (and with --full every tile and entry) up to the
    signed root, and consistency with the last checkpoint this home's auditor state saw.
    """
    the_home = home_of(home)
    if vkey_opt is None:
        verifier = ledger.verifier_key(the_home)
    else:
        text = vkey_opt
        if "+" not in text or Path(text).is_file():
            text = Path(text).read_text()
        try:
            verifier = note.parse_vkey(text, (note.ED25519,))
        except note.NoteError as exc:
            raise CandourError(f"--vkey: {exc}") from exc
    where = source if source is not None else ledger.public_dir(the_home)
    state = the_home.ledger / "auditor" / "state.json"
    report = verify.verify(verify.source_for(where), verifier, full=full, state_path=state)
    typer.echo(report.summary())
    for line in report.notes:
        typer.echo(f"note: {line}", err=True)
