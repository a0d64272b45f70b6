"""Workflows that cross domains (e.g. the vault and residents' choices).

A domain package may import only what the design allows; a workflow that needs several domains
lives here, and the CLI and web app call it.
"""
