"""The catalogue as DCAT-AP in JSON-LD, and the links every view of a dataset shares.

The JSON-LD context is inline (no remote ``@context``), so any RDF tool can read
``/catalog.jsonld`` without fetching anything else. Terms follow DCAT-AP 3: a ``dcat:Catalog``
of ``dcat:Dataset`` s, each with ``dcat:Distribution`` s (CSV, JSON, Parquet), licences as
``dct:LicenseDocument`` IRIs, frequencies and file types from the EU Publications Office
vocabularies, and provenance as a ``dct:ProvenanceStatement`` plus ``prov:wasDerivedFrom``
links to the register entry and the transparency-log entries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from candour.catalogue.model import Dataset, Resource

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "prov": "http://www.w3.org/ns/prov#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
FILE_TYPES = "http://publications.europa.eu/resource/authority/file-type/"
FILE_TYPE_CODES = {"CSV": "CSV", "JSON": "JSON", "Parquet": "PARQUET"}
IANA = "https://www.iana.org/assignments/media-types/"
ENGLISH = "http://publications.europa.eu/resource/authority/language/ENG"


def base_of(url: str) -> str:
    """A base URL without its trailing slash."""
    return url.rstrip("/")


def page_url(base: str, dataset: Dataset) -> str:
    """The dataset's page (also its IRI in DCAT)."""
    return f"{base}/data/{dataset.name}"


def download_url(base: str, dataset: Dataset, resource: Resource) -> str:
    """Where a resource downloads from."""
    return f"{base}/data/{dataset.name}/{resource.file_name}"


def csvw_url(base: str, dataset: Dataset) -> str:
    """Where the dataset's CSVW metadata is."""
    return f"{base}/data/{dataset.name}/{dataset.csvw_file}"


def register_url(base: str, use_id: str) -> str:
    """The register entry of a data use."""
    return f"{base}/register/{use_id}"


def entry_url(base: str, index: int) -> str:
    """A transparency-log entry's page."""
    return f"{base}/transparency/entries/{index}"


def organisation_url(base: str, name: str) -> str:
    """The catalogue filtered to one publisher (the publisher's IRI)."""
    return f"{base}/data?organisation={name}"


def iso(value: datetime) -> str:
    """A UTC timestamp as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance_text(dataset: Dataset) -> str:
    """Where the dataset came from, in a sentence or two."""
    if dataset.origin == "release":
        entries = ", ".join(str(i) for i in dataset.ledger_entries) or "none"
        return (
            f"Produced under data use {dataset.use_id} in Candour, a trusted data environment. "
            f"The output passed statistical disclosure control (counts below "
            f"{dataset.threshold} suppressed) and a second person's output check, and was "
            f"released as {dataset.release_id}. Transparency-log entries: {entries}."
        )
    declared = dataset.declaration
    who = f" by {declared.declared_by} on {iso(declared.declared_at)}" if declared else ""
    return (
        "Published directly as data that is not about people, on a recorded declaration"
        f"{who} that it holds no personal data."
    )


def _typed(value: str, datatype: str) -> dict[str, str]:
    return {"@value": value, "@type": f"xsd:{datatype}"}


def _text(value: str) -> dict[str, str]:
    return {"@value": value, "@language": "en"}


def distribution(base: str, dataset: Dataset, resource: Resource) -> dict[str, Any]:
    """One resource as a ``dcat:Distribution``."""
    item: dict[str, Any] = {
        "@id": f"{page_url(base, dataset)}#{resource.format.lower()}",
        "@type": "dcat:Distribution",
        "dct:title": _text(f"{dataset.title} ({resource.format})"),
        "dcat:accessURL": {"@id": page_url(base, dataset)},
        "dcat:downloadURL": {"@id": download_url(base, dataset, resource)},
        "dcat:mediaType": {"@id": IANA + resource.media_type},
        "dct:format": {"@id": FILE_TYPES + FILE_TYPE_CODES.get(resource.format, "BIN")},
        "dcat:byteSize": _typed(str(resource.size), "nonNegativeInteger"),
        "dct:license": {"@id": dataset.licence.url},
        "dct:issued": _typed(iso(dataset.published_at), "dateTime"),
        "spdx:checksum": {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": _typed(resource.sha256, "hexBinary"),
        },
    }
    if resource.format == "CSV":
        item["dct:conformsTo"] = {"@id": csvw_url(base, dataset)}
    return item


def dataset_node(base: str, dataset: Dataset) -> dict[str, Any]:
    """One dataset as a ``dcat:Dataset`` node."""
    node: dict[str, Any] = {
        "@id": page_url(base, dataset),
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.dataset_id,
        "dct:title": _text(dataset.title),
        "dct:description": _text(dataset.description),
        "dct:publisher": {
            "@id": organisation_url(base, dataset.publisher.name),
            "@type": "foaf:Agent",
            "foaf:name": dataset.publisher.title,
        },
        "dct:license": {"@id": dataset.licence.url},
        "dcat:keyword": [_text(k) for k in dataset.keywords],
        "dct:issued": _typed(iso(dataset.published_at), "dateTime"),
        "dct:modified": _typed(iso(dataset.published_at), "dateTime"),
        "dct:accrualPeriodicity": {"@id": dataset.frequency_uri},
        "dct:language": {"@id": ENGLISH},
        "dcat:landingPage": {"@id": page_url(base, dataset)},
        "dct:provenance": {
            "@type": "dct:ProvenanceStatement",
            "rdfs:label": _text(provenance_text(dataset)),
        },
        "dcat:distribution": [distribution(base, dataset, r) for r in dataset.resources],
    }
    if dataset.temporal_start and dataset.temporal_end:
        node["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": _typed(dataset.temporal_start.isoformat(), "date"),
            "dcat:endDate": _typed(dataset.temporal_end.isoformat(), "date"),
        }
    if dataset.spatial:
        if dataset.spatial.startswith(("http://", "https://")):
            node["dct:spatial"] = {"@id": dataset.spatial}
        else:
            node["dct:spatial"] = {
                "@type": "dct:Location",
                "skos:prefLabel": _text(dataset.spatial),
            }
    derived = []
    if dataset.use_id:
        derived.append({"@id": register_url(base, dataset.use_id)})
    derived.extend({"@id": entry_url(base, i)} for i in dataset.ledger_entries)
    if derived:
        node["prov:wasDerivedFrom"] = derived
    return node


def catalog(
    base: str, datasets: list[Dataset], *, title: str = "Candour open data"
) -> dict[str, Any]:
    """The whole catalogue as one JSON-LD document."""
    modified = max((d.published_at for d in datasets), default=None)
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": f"{base}/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": _text(title),
        "dct:description": _text(
            "Open data published from Candour: outputs that passed disclosure control and a "
            "second person's check, and data declared to hold nothing about people."
        ),
        "dct:publisher": {"@id": f"{base}/", "@type": "foaf:Agent", "foaf:name": "Candour"},
        "foaf:homepage": {"@id": f"{base}/data"},
        "dct:language": {"@id": ENGLISH},
        "dcat:dataset": [dataset_node(base, d) for d in datasets],
    }
    if modified is not None:
        document["dct:modified"] = _typed(iso(modified), "dateTime")
    return document
