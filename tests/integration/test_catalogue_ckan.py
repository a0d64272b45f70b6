"""The catalogue's machine interfaces, read by tools we did not write, from a running
``candour serve``: ckanapi (CKAN's own client library) lists, reads and downloads every
dataset; rdflib parses ``/catalog.jsonld`` as RDF and finds a title, a licence and a working
distribution for every dataset."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from candour.catalogue import list_datasets
from candour.config import Settings
from e2e.support import free_port
from integration.test_catalogue_publish import build_catalogue

CANDOUR = Path(sys.executable).parent / "candour"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """``candour serve`` on a free localhost port, over a home with published datasets."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = build_catalogue(tmp_path_factory.mktemp("ckan"), web_base_url=base)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANDOUR_")}
    env.update(CANDOUR_WEB_BASE_URL=base, CANDOUR_WEB_SECURE_COOKIES="false")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(CANDOUR), "serve", "--port", str(port), "--home", str(settings.home)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/3", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"candour serve did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield base, settings
        finally:
            server.terminate()
            server.wait(10)


@pytest.fixture(params=["post", "get"])
def portal(request: pytest.FixtureRequest, served: tuple[str, Settings]) -> ckanapi.RemoteCKAN:
    """ckanapi as clients use it: POSTing JSON (its default) and GET only (as harvesters do)."""
    base, _ = served
    return ckanapi.RemoteCKAN(base, get_only=request.param == "get")


def _read(fmt: str, data: bytes) -> pd.DataFrame:
    if fmt == "CSV":
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    if fmt == "JSON":
        return pd.DataFrame(json.loads(data))
    return pq.read_table(io.BytesIO(data)).to_pandas()


def test_ckanapi_lists_reads_and_downloads_every_dataset(
    portal: ckanapi.RemoteCKAN, served: tuple[str, Settings]
):
    base, settings = served
    published = {d.name: d for d in list_datasets(settings)}
    names = portal.action.package_list()
    assert sorted(names) == sorted(published) and len(names) == 2

    for name in names:
        package = portal.action.package_show(id=name)
        dataset = published[name]
        assert package["id"] == dataset.dataset_id and package["title"] == dataset.title
        assert package["license_id"] == "uk-ogl" and package["isopen"] is True
        assert package["organization"]["name"] == dataset.publisher.name
        assert portal.action.package_show(id=dataset.dataset_id)["name"] == name
        extras = {e["key"]: e["value"] for e in package["extras"]}
        assert extras["frequency"].startswith("http://publications.europa.eu/resource/authority")
        assert [r["format"] for r in package["resources"]] == ["CSV", "JSON", "Parquet"]
        frames = []
        for resource in package["resources"]:
            assert portal.action.resource_show(id=resource["id"]) == resource
            response = requests.get(resource["url"], timeout=30)
            assert response.status_code == 200, resource["url"]
            assert hashlib.sha256(response.content).hexdigest() == resource["hash"]
            assert len(response.content) == resource["size"]
            assert response.headers["content-type"].startswith(resource["mimetype"])
            frames.append(_read(resource["format"], response.content))
        assert {len(f) for f in frames} == {dataset.rows}
        assert all(list(f.columns) == [c.name for c in dataset.columns] for f in frames)
        schema = requests.get(package["resources"][0]["conforms_to"][0], timeout=30).json()
        assert schema["url"] == package["resources"][0]["url"].rsplit("/", 1)[1]

        if dataset.origin == "release":
            assert extras["data_use"] == dataset.use_id
            assert extras["data_use_url"] == f"{base}/register/{dataset.use_id}"
            assert extras["release_id"] == dataset.release_id
            assert extras["ledger_entries"] == ",".join(map(str, dataset.ledger_entries))
        else:
            assert extras["temporal_start"] == "2024-11-01"


def test_ckanapi_reads_organisations_and_searches(portal: ckanapi.RemoteCKAN):
    orgs = portal.action.organization_list()
    assert orgs == ["wealdshire-county-council", "wealdshire-county-council-highways"]
    full = portal.action.organization_list(all_fields=True)
    assert [o["package_count"] for o in full] == [1, 1]
    highways = portal.action.organization_show(id=orgs[1], include_datasets=True)
    assert highways["title"] == "Wealdshire County Council Highways"
    assert [p["name"] for p in highways["packages"]] == [
        "road-surface-temperatures-on-gritting-routes"
    ]
    assert portal.action.organization_show(id=full[0]["id"])["name"] == orgs[0]

    everything = portal.action.package_search(q="*:*", rows=1000)
    assert everything["count"] == 2 and len(everything["results"]) == 2
    first = portal.action.package_search(rows=1, start=0, sort="name asc")
    second = portal.action.package_search(rows=1, start=1, sort="name asc")
    assert first["count"] == second["count"] == 2
    assert [first["results"][0]["name"], second["results"][0]["name"]] == sorted(
        p["name"] for p in everything["results"]
    )
    assert portal.action.package_search(rows=1, start=2)["results"] == []
    roads = portal.action.package_search(q="temperatures")
    assert [p["name"] for p in roads["results"]] == ["road-surface-temperatures-on-gritting-routes"]
    assert portal.action.package_search(q="tags:falls")["count"] == 1
    assert portal.action.package_search(fq="organization:wealdshire-county-council")["count"] == 1
    since = portal.action.package_search(fq="metadata_modified:[2020-01-01T00:00:00Z TO *]")
    assert since["count"] == 2
    assert portal.action.package_search(q="no-such-words-anywhere")["count"] == 0


def test_ckan_errors_come_back_as_ckan_reports_them(portal: ckanapi.RemoteCKAN, served):
    base, _ = served
    with pytest.raises(ckanapi.NotFound):
        portal.action.package_show(id="no-such-dataset")
    with pytest.raises(ckanapi.NotFound):
        portal.action.resource_show(id="no-such-resource")
    with pytest.raises(ckanapi.NotFound):
        portal.action.organization_show(id="no-such-organisation")
    with pytest.raises(ckanapi.ValidationError) as invalid:
        portal.action.package_search(rows="many")
    assert invalid.value.error_dict["rows"] == ["Invalid integer"]
    with pytest.raises(ckanapi.ValidationError):
        portal.action.package_show()
    with pytest.raises(ckanapi.SearchQueryError):
        portal.action.package_search(q="colour:blue")

    raw = httpx.get(f"{base}/api/3/action/package_show", params={"id": "nope"})
    assert raw.status_code == 404
    assert raw.json() == {
        "help": f"{base}/api/3/action/help_show?name=package_show",
        "success": False,
        "error": {"__type": "Not Found Error", "message": "Not found"},
    }
    unknown = httpx.post(f"{base}/api/3/action/package_create", json={"name": "x"})
    assert unknown.status_code == 400 and unknown.json()["success"] is False
    assert "Action name not known: package_create" in unknown.json()["error"]["message"]
    assert httpx.get(f"{base}/api/3").json() == {"version": 3}
    ok = httpx.get(f"{base}/api/3/action/package_list")
    assert ok.headers["access-control-allow-origin"] == "*"
    assert ok.json()["help"] == f"{base}/api/3/action/help_show?name=package_list"
    help_text = httpx.get(f"{base}/api/3/action/help_show", params={"name": "package_search"})
    assert ":param rows:" in help_text.json()["result"]


def test_the_dcat_catalogue_parses_as_rdf_and_every_dataset_is_complete(served):
    base, settings = served
    response = httpx.get(f"{base}/catalog.jsonld")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    graph = Graph().parse(data=response.text, format="json-ld", base=base)
    catalogs = list(graph.subjects(RDF.type, DCAT.Catalog))
    assert catalogs == [URIRef(f"{base}/catalog.jsonld")]
    datasets = list(graph.objects(catalogs[0], DCAT.dataset))
    assert len(datasets) == len(list_datasets(settings)) == 2
    for dataset in datasets:
        assert (dataset, RDF.type, DCAT.Dataset) in graph
        assert str(graph.value(dataset, DCTERMS.title) or "").strip()
        assert graph.value(dataset, DCTERMS.publisher) is not None
        assert graph.value(dataset, DCTERMS.provenance) is not None
        licence = graph.value(dataset, DCTERMS.license)
        assert str(licence).startswith("http://www.nationalarchives.gov.uk/doc/open-government")
        distributions = list(graph.objects(dataset, DCAT.distribution))
        assert len(distributions) == 3
        for distribution in distributions:
            assert graph.value(distribution, DCTERMS.license) == licence
            url = graph.value(distribution, DCAT.downloadURL)
            assert url is not None and httpx.get(str(url)).status_code == 200
    falls = URIRef(f"{base}/data/falls-evaluation-falls-by-area")
    derived_from = URIRef("http://www.w3.org/ns/prov#wasDerivedFrom")
    derived = {str(o) for o in graph.objects(falls, derived_from)}
    assert f"{base}/register/DU-2026-001" in derived
    assert any(d.startswith(f"{base}/transparency/entries/") for d in derived)
    roads = URIRef(f"{base}/data/road-surface-temperatures-on-gritting-routes")
    temporal = graph.value(roads, DCTERMS.temporal)
    assert str(graph.value(temporal, DCAT.startDate)) == "2024-11-01"
    assert str(graph.value(roads, DCTERMS.accrualPeriodicity)).endswith("/HOURLY")


def test_pages_link_to_provenance_and_downloads(served):
    base, _ = served
    listing = httpx.get(f"{base}/data", params={"q": "falls"})
    assert listing.status_code == 200
    assert 'href="/data/falls-evaluation-falls-by-area"' in listing.text
    assert 'href="/data/road-surface-temperatures-on-gritting-routes"' not in listing.text
    page = httpx.get(f"{base}/data/falls-evaluation-falls-by-area")
    assert page.status_code == 200
    assert 'href="/register/DU-2026-001"' in page.text
    assert 'href="/transparency/entries/' in page.text
    assert "falls-evaluation-falls-by-area.csv-metadata.json" in page.text
    assert httpx.get(f"{base}/data/no-such-dataset").status_code == 404
    traversal = f"{base}/data/falls-evaluation-falls-by-area/..%2F..%2Fcandour.db"
    assert httpx.get(traversal).status_code == 404
