"""Candour: a trusted data environment for public services.

Link service extracts to pseudonymous people, honour residents' choices, let data be used only
under approved and published data uses, let only safe aggregates out, and record every use in a
public, verifiable log.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy, so that `import candour` stays cheap for the CLI and the web app.
    if name == "connect":
        from candour.gate import connect

        return connect
    raise AttributeError(f"module 'candour' has no attribute {name!r}")
