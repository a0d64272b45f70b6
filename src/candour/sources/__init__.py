"""Service extracts: the ``sources.yaml`` format, readers, validation and standardisation."""
