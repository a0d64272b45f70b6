"""Unsupervised training: the prior from deterministic rules, u by random sampling, m by EM."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from splink import Linker

from candour.linkage.model import ModelSpec, describe_rule

# A fixed seed makes u sampling, and so the whole model, reproducible run to run.
SEED = 4242


@dataclass
class TrainingSummary:
    """What training did, for the run record."""

    prior: float
    em_sessions: list[str] = field(default_factory=list)


def make_linker(identities: Any, spec: ModelSpec, blocking_rules: list[Any]) -> Linker:
    """A Splink linker for the identities with this model and blocking rules."""
    return Linker(identities, spec.settings(blocking_rules), log_level=logging.WARNING)


def train(linker: Linker, spec: ModelSpec, records: int) -> TrainingSummary:
    """Estimate the model's parameters from the data, without labels."""
    if spec.deterministic_rules and "probability_two_random_records_match" not in (
        spec.splink_extra
    ):
        proportion = 1.0 if records <= 200_000 else max(0.05, 200_000 / records)
        try:
            linker.training.estimate_probability_two_random_records_match(
                spec.deterministic_rules,
                recall=spec.deterministic_recall,
                record_sample_proportion=proportion,
            )
        except ValueError:
            # The rules found more pairs than the stated recall allows (tiny or very
            # duplicated data): keep Splink's default prior rather than fail the run.
            logging.getLogger(__name__).warning("prior estimate failed; using the default")
    # Random pairs are almost all non-matches, so they estimate u; the sample is capped so a
    # large home trains in seconds, while small homes use every pair there is.
    max_pairs = min(spec.u_max_pairs, max(1e6, 20.0 * records), records * (records - 1) / 2)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=SEED)
    sessions = []
    for rule in spec.training_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule,
            estimate_without_term_frequencies=True,
            max_pairs=spec.em_max_pairs if records > 20_000 else None,
        )
        sessions.append(describe_rule(rule))
    prior = float(linker._settings_obj._probability_two_random_records_match)
    return TrainingSummary(prior=prior, em_sessions=sessions)
