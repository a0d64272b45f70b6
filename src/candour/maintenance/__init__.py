"""Keeping a data home healthy: consistency checks, and encrypted backup and restore."""
