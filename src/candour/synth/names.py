"""Name tables with realistic frequencies, taken from Faker's en_GB person provider.

Faker's en_GB surnames carry ONS-derived weights; its first names are listed in ONS rank order
without weights, so we weight them by a Zipf-like law on rank. Sampling is done with numpy over
these tables, not by calling Faker per person, which would be far too slow for a county.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from faker.providers.person.en_GB import Provider as _PersonGB

# Formal name -> common nicknames (only names Faker's tables hold are used).
NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"),
    "Robert": ("Bob", "Rob", "Bobby"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"),
    "James": ("Jim", "Jamie", "Jimmy"),
    "Thomas": ("Tom", "Tommy"),
    "Christopher": ("Chris",),
    "Michael": ("Mike", "Mick"),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Andrew": ("Andy", "Drew"),
    "Anthony": ("Tony",),
    "Stephen": ("Steve",),
    "Steven": ("Steve",),
    "Richard": ("Rich", "Dick", "Richie"),
    "Joseph": ("Joe",),
    "Benjamin": ("Ben",),
    "Samuel": ("Sam",),
    "Alexander": ("Alex",),
    "Jonathan": ("Jon", "Jonny"),
    "Nicholas": ("Nick",),
    "Edward": ("Ed", "Ted", "Eddie"),
    "Timothy": ("Tim",),
    "Peter": ("Pete",),
    "David": ("Dave",),
    "Kenneth": ("Ken",),
    "Philip": ("Phil",),
    "Gregory": ("Greg",),
    "Raymond": ("Ray",),
    "Ronald": ("Ron", "Ronnie"),
    "Frederick": ("Fred", "Freddie"),
    "Joshua": ("Josh",),
    "Jacob": ("Jake",),
    "Nathan": ("Nate",),
    "Katherine": ("Kate", "Kathy"),
    "Catherine": ("Cathy", "Kate"),
    "Kathryn": ("Kate",),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Jennifer": ("Jen", "Jenny"),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"),
    "Samantha": ("Sam",),
    "Deborah": ("Debbie", "Deb"),
    "Susan": ("Sue", "Susie"),
    "Patricia": ("Pat", "Trish"),
    "Alexandra": ("Alex",),
    "Jessica": ("Jess",),
    "Charlotte": ("Lottie", "Charlie"),
    "Christine": ("Chris",),
    "Jacqueline": ("Jackie",),
    "Pamela": ("Pam",),
    "Natalie": ("Nat",),
    "Abigail": ("Abby",),
    "Eleanor": ("Ellie",),
    "Amanda": ("Mandy",),
    "Barbara": ("Barb",),
    "Dorothy": ("Dot",),
    "Josephine": ("Jo",),
    "Joanne": ("Jo",),
    "Sandra": ("Sandy",),
    "Gillian": ("Gill",),
    "Valerie": ("Val",),
    "Beverley": ("Bev",),
    "Kimberley": ("Kim",),
    "Stephanie": ("Steph",),
    "Frances": ("Fran",),
}


@dataclass(frozen=True)
class NameTables:
    """Names as numpy object arrays with sampling probabilities.

    ``given`` holds male names then female names; ``male_slice``/``female_slice`` index it.
    ``nickname_options[i]`` are the nicknames of ``given[i]`` (empty when it has none).
    """

    given: np.ndarray
    male_p: np.ndarray
    female_p: np.ndarray
    n_male: int
    surnames: np.ndarray
    surname_p: np.ndarray
    has_nickname: np.ndarray
    nickname_options: tuple[tuple[str, ...], ...]

    def sample_given(self, rng: np.random.Generator, female: np.ndarray) -> np.ndarray:
        """Given-name indices (into ``given``) for people with the given sexes."""
        out = np.empty(len(female), dtype=np.int32)
        n_f = int(female.sum())
        out[~female] = rng.choice(self.n_male, size=len(female) - n_f, p=self.male_p)
        out[female] = self.n_male + rng.choice(
            len(self.given) - self.n_male, size=n_f, p=self.female_p
        )
        return out

    def sample_surnames(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Surname indices (into ``surnames``) with ONS-like frequencies."""
        return rng.choice(len(self.surnames), size=n, p=self.surname_p).astype(np.int32)


def _rank_weights(n: int) -> np.ndarray:
    # Zipf-like on rank: the top names are common but the tail is long, as in ONS tables.
    weights = 1.0 / (np.arange(n) + 8.0)
    return weights / weights.sum()


@lru_cache(maxsize=1)
def name_tables() -> NameTables:
    """The cached name tables (built once per process)."""
    male = list(dict.fromkeys(_PersonGB.first_names_male))
    female = list(dict.fromkeys(_PersonGB.first_names_female))
    surname_items = list(_PersonGB.last_names.items())
    surnames = np.array([name for name, _ in surname_items], dtype=object)
    surname_w = np.array([weight for _, weight in surname_items], dtype=float)
    given = np.array(male + female, dtype=object)
    options = tuple(NICKNAMES.get(name, ()) for name in given)
    return NameTables(
        given=given,
        male_p=_rank_weights(len(male)),
        female_p=_rank_weights(len(female)),
        n_male=len(male),
        surnames=surnames,
        surname_p=surname_w / surname_w.sum(),
        has_nickname=np.array([bool(o) for o in options]),
        nickname_options=options,
    )
