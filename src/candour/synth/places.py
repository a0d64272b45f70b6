"""The fictional county of Wealdshire: towns, streets, properties and UK-format postcodes.

Each chunk of the county is its own neighbourhood of streets. Postcodes are derived from a
global postcode number (chunk, local index), so they are unique across chunks and follow the UK
format ``AA9 9AA`` (area, district, sector, unit); street names come from Faker's en_GB tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from candour.synth.names import name_tables

COUNTY = "Wealdshire"
# Real-format postcode areas; the county itself is fictional.
POSTCODE_AREAS = ("TN", "ME", "CT", "DA")
DISTRICTS_PER_AREA = 30
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the 20 letters Royal Mail uses in the inward unit
POSTCODES_PER_CHUNK = 4000
TOWNS = (
    "Ashcombe",
    "Bramleigh",
    "Cranbury",
    "Denholt",
    "Eastwold",
    "Fairlyng",
    "Gillingford",
    "Hawkmere",
    "Idenbridge",
    "Kingsdown",
    "Larkhurst",
    "Marden Vale",
    "Northfleetwood",
    "Oakenden",
    "Pelham Cross",
    "Queensbury Hythe",
    "Rodmersham",
    "Selsworth",
    "Tenterholt",
    "Westerham Green",
)
STREET_SUFFIXES = (
    "Road",
    "Street",
    "Lane",
    "Close",
    "Avenue",
    "Drive",
    "Way",
    "Gardens",
    "Crescent",
    "Place",
    "Court",
    "Grove",
    "Terrace",
    "Rise",
    "Mews",
    "Walk",
    "Hill",
    "View",
)
STREET_SUFFIX_P = np.array([18, 14, 12, 10, 8, 7, 5, 5, 4, 3, 3, 3, 2, 2, 1, 1, 1, 1], dtype=float)
STREET_SUFFIX_P /= STREET_SUFFIX_P.sum()
# A few distinctive stems, the rest from names, as real street names are.
STREET_STEMS = (
    "Church",
    "Mill",
    "Station",
    "Park",
    "Victoria",
    "Manor",
    "School",
    "Queens",
    "Kings",
    "Orchard",
    "Chapel",
    "Meadow",
    "Forge",
    "Hop Garden",
    "Oast",
    "Windmill",
    "Castle",
)


@dataclass
class Places:
    """One chunk's properties; every array is indexed by local property number."""

    property_id: np.ndarray  # int64 UPRN-like reference
    house: np.ndarray  # object: "12" or "Flat 3, 12"
    street: np.ndarray  # object
    town: np.ndarray  # object
    postcode: np.ndarray  # object, "TN4 7AB"
    band: np.ndarray  # object, council tax band A-H

    @property
    def line1(self) -> np.ndarray:
        """House and street on one line."""
        return np.array(
            [f"{h} {s}" for h, s in zip(self.house, self.street, strict=True)], dtype=object
        )


def postcode_for(global_index: np.ndarray) -> np.ndarray:
    """The UK-format postcode for each global postcode number (an injective mapping)."""
    unit = global_index % 400
    sector = (global_index // 400) % 10
    district_number = global_index // 4000
    district = district_number % DISTRICTS_PER_AREA + 1
    area = (district_number // DISTRICTS_PER_AREA) % len(POSTCODE_AREAS)
    return np.array(
        [
            f"{POSTCODE_AREAS[a]}{d} {s}{UNIT_LETTERS[u // 20]}{UNIT_LETTERS[u % 20]}"
            for a, d, s, u in zip(area, district, sector, unit, strict=True)
        ],
        dtype=object,
    )


def build_places(rng: np.random.Generator, chunk: int, n_properties: int) -> Places:
    """Lay ``n_properties`` out along streets, with postcodes of about 14 properties each."""
    names = name_tables()
    # Streets of 8-60 properties.
    sizes: list[int] = []
    total = 0
    while total < n_properties:
        size = int(rng.integers(8, 61))
        sizes.append(size)
        total += size
    sizes[-1] -= total - n_properties
    n_streets = len(sizes)
    street_of = np.repeat(np.arange(n_streets), sizes)
    position = np.concatenate([np.arange(s) for s in sizes]) if sizes else np.zeros(0, int)

    stem_kind = rng.random(n_streets)
    surname_stems = names.surnames[names.sample_surnames(rng, n_streets)]
    given_stems = names.given[rng.integers(0, len(names.given), n_streets)]
    fixed_stems = np.array(STREET_STEMS, dtype=object)[
        rng.integers(0, len(STREET_STEMS), n_streets)
    ]
    stems = np.where(
        stem_kind < 0.5, surname_stems, np.where(stem_kind < 0.7, given_stems, fixed_stems)
    )
    suffixes = np.array(STREET_SUFFIXES, dtype=object)[
        rng.choice(len(STREET_SUFFIXES), size=n_streets, p=STREET_SUFFIX_P)
    ]
    street_names = np.array(
        [f"{a} {b}" for a, b in zip(stems, suffixes, strict=True)], dtype=object
    )

    # Postcode units run along each street, about 14 properties each, never shared by streets.
    per_unit = 14
    units_per_street = (np.array(sizes) + per_unit - 1) // per_unit
    first_unit = np.concatenate([[0], np.cumsum(units_per_street)[:-1]])
    local_unit = first_unit[street_of] + position // per_unit
    if local_unit.size and int(local_unit.max()) >= POSTCODES_PER_CHUNK:
        raise ValueError("too many properties in one chunk for its postcode range")
    global_unit = chunk * POSTCODES_PER_CHUNK + local_unit
    postcodes_by_unit = postcode_for(
        np.arange(int(units_per_street.sum())) + chunk * POSTCODES_PER_CHUNK
    )
    postcode = postcodes_by_unit[local_unit]
    district_number = global_unit // 4000
    town = np.array(TOWNS, dtype=object)[(district_number * 3 + local_unit // 250) % len(TOWNS)]

    # Some streets are blocks of flats: "Flat n, <building number>".
    flats = rng.random(n_streets) < 0.15
    number = position + 1
    building = position // 8 + 1
    flat_no = position % 8 + 1
    is_flat = flats[street_of]
    house = np.array(
        [
            f"Flat {f}, {b}" if fl else str(n)
            for fl, f, b, n in zip(is_flat, flat_no, building, number, strict=True)
        ],
        dtype=object,
    )
    band = np.array(list("ABCDEFGH"), dtype=object)[
        rng.choice(8, size=n_properties, p=[0.2, 0.22, 0.22, 0.15, 0.1, 0.06, 0.04, 0.01])
    ]
    band[is_flat] = np.array(list("AB"), dtype=object)[rng.integers(0, 2, int(is_flat.sum()))]
    property_id = 100_000_000_000 + chunk * 1_000_000 + np.arange(n_properties, dtype=np.int64)
    return Places(
        property_id=property_id,
        house=house,
        street=street_names[street_of],
        town=town,
        postcode=postcode,
        band=band,
    )
