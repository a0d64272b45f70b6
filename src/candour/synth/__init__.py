"""The synthetic county: a population, six service extracts with realistic errors, planted
effects and the ground truth to check linkage and studies against. See docs/synthetic-county.md.
"""

from candour.synth.config import SynthConfig, load_config
from candour.synth.county import CountySummary, sources_file, write_county

__all__ = ["CountySummary", "SynthConfig", "load_config", "sources_file", "write_county"]
