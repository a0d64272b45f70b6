"""The CKAN Action API (v3) read actions, over the catalogue.

The shapes follow CKAN 2.10/2.11 (``ckan/logic/action/get.py`` and ``ckan/views/api.py``): the
envelope ``{"help", "success", "result"}``; on failure ``{"help", "success": false, "error":
{"__type", "message"}}`` with CKAN's status codes (400 bad request or search query error, 404
not found, 409 validation error). Package, resource and organisation dicts carry CKAN's core
fields, plus the extras ckanext-dcat reads (``temporal_start``, ``frequency``, ``provenance``,
…), so CKAN harvesters and clients such as ckanapi read the catalogue as any CKAN portal.
Only read actions exist; the catalogue is changed by publishing (see ``publish.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from candour.catalogue import dcat
from candour.catalogue.model import CatalogueError, Dataset, NotFound, Organisation, Resource
from candour.catalogue.query import (
    MAX_ROWS,
    BadQuery,
    get_dataset,
    get_organisation,
    get_resource,
    list_datasets,
    list_organisations,
    search_datasets,
)
from candour.config import Settings

API_VERSION = 3


class ActionError(Exception):
    """An action failed the way CKAN reports it: HTTP status and the ``error`` object."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", error.get("__type")))
        self.status = status
        self.error = error


def _stamp(value: datetime) -> str:
    # CKAN's own format: naive UTC with microseconds.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def organization_dict(org: Organisation, base: str) -> dict[str, Any]:
    """A publisher as CKAN's organization dict."""
    return {
        "id": org.organisation_id,
        "name": org.name,
        "title": org.title,
        "display_name": org.title,
        "description": "",
        "image_url": "",
        "image_display_url": "",
        "created": _stamp(org.created_at),
        "is_organization": True,
        "approval_status": "approved",
        "state": "active",
        "type": "organization",
        "package_count": org.datasets,
        "url": dcat.organisation_url(base, org.name),
    }


def resource_dict(dataset: Dataset, resource: Resource, base: str) -> dict[str, Any]:
    """A file as CKAN's resource dict; ``url`` downloads it."""
    item: dict[str, Any] = {
        "id": resource.resource_id,
        "package_id": dataset.dataset_id,
        "name": f"{dataset.title} ({resource.format})",
        "description": f"{dataset.rows} rows, {len(dataset.columns)} columns, as "
        f"{resource.format}.",
        "format": resource.format,
        "mimetype": resource.media_type,
        "mimetype_inner": None,
        "url": dcat.download_url(base, dataset, resource),
        "url_type": None,
        "size": resource.size,
        "hash": resource.sha256,
        "position": resource.position,
        "state": "active",
        "created": _stamp(dataset.published_at),
        "last_modified": _stamp(dataset.published_at),
        "metadata_modified": _stamp(dataset.published_at),
        "resource_type": None,
        "datastore_active": False,
        "cache_url": None,
        "cache_last_updated": None,
    }
    if resource.format == "CSV":
        item["conforms_to"] = [dcat.csvw_url(base, dataset)]
        item["schema"] = dcat.csvw_url(base, dataset)
    return item


def package_dict(dataset: Dataset, base: str) -> dict[str, Any]:
    """A dataset as CKAN's package dict."""
    extras: dict[str, str] = {
        "issued": dcat.iso(dataset.published_at),
        "modified": dcat.iso(dataset.published_at),
        "frequency": dataset.frequency_uri,
        "provenance": dcat.provenance_text(dataset),
        "publisher_name": dataset.publisher.title,
        "publisher_uri": dcat.organisation_url(base, dataset.publisher.name),
        "conforms_to": dcat.csvw_url(base, dataset),
        "origin": dataset.origin,
    }
    if dataset.temporal_start and dataset.temporal_end:
        extras["temporal_start"] = dataset.temporal_start.isoformat()
        extras["temporal_end"] = dataset.temporal_end.isoformat()
    if dataset.spatial:
        uri = dataset.spatial.startswith(("http://", "https://"))
        key = "spatial_uri" if uri else "spatial_text"
        extras[key] = dataset.spatial
    if dataset.use_id:
        extras["data_use"] = dataset.use_id
        extras["data_use_url"] = dcat.register_url(base, dataset.use_id)
    if dataset.release_id:
        extras["release_id"] = dataset.release_id
    if dataset.ledger_entries:
        extras["ledger_entries"] = ",".join(str(i) for i in dataset.ledger_entries)
    stamp = _stamp(dataset.published_at)
    return {
        "id": dataset.dataset_id,
        "name": dataset.name,
        "title": dataset.title,
        "notes": dataset.description,
        "type": "dataset",
        "state": "active",
        "private": False,
        "isopen": True,
        "license_id": dataset.licence.ckan_id,
        "license_title": dataset.licence.title,
        "license_url": dataset.licence.url,
        "author": None,
        "author_email": None,
        "maintainer": None,
        "maintainer_email": None,
        "version": None,
        "url": dcat.page_url(base, dataset),
        "metadata_created": stamp,
        "metadata_modified": stamp,
        "creator_user_id": None,
        "owner_org": dataset.publisher.organisation_id,
        "organization": organization_dict(dataset.publisher, base),
        "num_resources": len(dataset.resources),
        "num_tags": len(dataset.keywords),
        "tags": [
            {"id": f"tag-{k.lower()}", "name": k, "display_name": k, "state": "active",
             "vocabulary_id": None}
            for k in dataset.keywords
        ],
        "groups": [],
        "relationships_as_object": [],
        "relationships_as_subject": [],
        "resources": [resource_dict(dataset, r, base) for r in dataset.resources],
        "extras": [{"key": k, "value": v} for k, v in sorted(extras.items())],
    }


# -- actions ---------------------------------------------------------------------------------


def _validation(field: str, message: str) -> ActionError:
    return ActionError(409, {"__type": "Validation Error", field: [message]})


def _not_found(message: str = "") -> ActionError:
    text = "Not found" + (f": {message}" if message else "")
    return ActionError(404, {"__type": "Not Found Error", "message": text})


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise _validation(key, "Invalid integer") from None
    if number < low:
        raise _validation(key, f"Must be a natural number{'' if low == 0 else ' above 0'}")
    if number > high:
        raise _validation(key, f"Must be less than or equal to {high}")
    return number


def _bool(params: Mapping[str, Any], key: str) -> bool:
    value = params.get(key, False)
    return value is True or str(value).lower() in ("true", "1", "yes", "on")


def _id(params: Mapping[str, Any]) -> str:
    value = params.get("id")
    if value in (None, ""):
        raise _validation("id", "Missing value")
    return str(value)


def package_list(settings: Settings, base: str, params: Mapping[str, Any]) -> list[str]:
    """Return the names of every dataset, in name order.

    :param limit: if given, at most this many names (optional)
    :param offset: when limit is given, the offset to start from (optional)
    """
    names = sorted(d.name for d in list_datasets(settings))
    offset = _int(params, "offset", 0, 0, 1 << 31)
    if params.get("limit") not in (None, ""):
        limit = _int(params, "limit", 0, 0, 1 << 31)
        return names[offset : offset + limit]
    return names[offset:]


def package_show(settings: Settings, base: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the metadata of a dataset and its resources.

    :param id: the id or name of the dataset
    """
    try:
        return package_dict(get_dataset(settings, _id(params)), base)
    except NotFound:
        raise _not_found() from None


def package_search(settings: Settings, base: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Search for datasets.

    :param q: terms that must all match: words, "phrases", or field:value for tags,
        organization, name, res_format, license_id, id, title, notes; ``*:*`` for all
    :param fq: further terms, including metadata_modified:[FROM TO TO] (``*`` for open ends)
    :param rows: how many datasets to return (default 10, at most 1000)
    :param start: the offset of the first dataset to return (default 0)
    :param sort: e.g. ``score desc, metadata_modified desc`` (the default), ``name asc``
    """
    # As in CKAN, more rows than the maximum is not an error: the page is just capped.
    rows = min(_int(params, "rows", 10, 0, 1 << 31), MAX_ROWS)
    start = _int(params, "start", 0, 0, 1 << 31)
    try:
        found = search_datasets(
            settings,
            str(params.get("q") or ""),
            fq=str(params.get("fq") or ""),
            rows=rows,
            start=start,
            sort=str(params["sort"]) if params.get("sort") else None,
        )
    except BadQuery as exc:
        raise ActionError(
            400, {"__type": "Search Query Error", "message": f"Search Query is invalid: {exc}"}
        ) from None
    return {
        "count": found.count,
        "results": [package_dict(d, base) for d in found.datasets],
        "sort": found.sort,
        "facets": {},
        "search_facets": {},
    }


def organization_list(settings: Settings, base: str, params: Mapping[str, Any]) -> list[Any]:
    """Return the publishers: names, or dicts with ``all_fields``.

    :param all_fields: return full organization dicts (default false)
    :param sort: ``title asc`` (default), ``name asc`` or ``package_count desc``
    :param limit: at most this many (optional)
    :param offset: the offset to start from (optional)
    """
    orgs = list_organisations(settings)
    sort = str(params.get("sort") or "title asc").strip().lower()
    orderings: dict[str, Callable[[Organisation], Any]] = {
        "title": lambda o: o.title.lower(),
        "name": lambda o: o.name,
        "package_count": lambda o: o.datasets,
    }
    bits = sort.split()
    if not bits or bits[0] not in orderings or len(bits) > 2 or (
        len(bits) == 2 and bits[1] not in ("asc", "desc")
    ):
        raise _validation("sort", "Invalid sort")
    orgs.sort(key=orderings[bits[0]], reverse=len(bits) == 2 and bits[1] == "desc")
    offset = _int(params, "offset", 0, 0, 1 << 31)
    limit = _int(params, "limit", len(orgs), 0, 1 << 31)
    page = orgs[offset : offset + limit]
    if _bool(params, "all_fields"):
        return [organization_dict(o, base) for o in page]
    return [o.name for o in page]


def organization_show(settings: Settings, base: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return a publisher, with its datasets when ``include_datasets`` is true.

    :param id: the id or name of the organization
    :param include_datasets: include up to 1000 of its datasets (default false)
    """
    try:
        org = get_organisation(settings, _id(params))
    except NotFound:
        raise _not_found("Organization was not found.") from None
    result = organization_dict(org, base)
    result.update({"users": [], "extras": [], "groups": [], "tags": []})
    if _bool(params, "include_datasets"):
        datasets = [
            d for d in list_datasets(settings) if d.publisher.organisation_id == org.organisation_id
        ]
        result["packages"] = [package_dict(d, base) for d in datasets[:MAX_ROWS]]
    return result


def resource_show(settings: Settings, base: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the metadata of a resource.

    :param id: the id of the resource
    """
    try:
        dataset, resource = get_resource(settings, _id(params))
    except NotFound:
        raise _not_found("Resource was not found.") from None
    return resource_dict(dataset, resource, base)


def help_show(settings: Settings, base: str, params: Mapping[str, Any]) -> str:
    """Return an action's help text.

    :param name: the action's name
    """
    name = str(params.get("name") or "")
    function = ACTIONS.get(name)
    if function is None:
        raise _not_found(f"Action function not found: {name}" if name else "")
    return function.__doc__ or ""


Action = Callable[[Settings, str, Mapping[str, Any]], Any]
ACTIONS: dict[str, Action] = {
    "package_list": package_list,
    "package_show": package_show,
    "package_search": package_search,
    "organization_list": organization_list,
    "organization_show": organization_show,
    "resource_show": resource_show,
    "help_show": help_show,
}


def help_url(base: str, action: str) -> str:
    """The ``help`` link CKAN puts in every response."""
    return f"{base}/api/{API_VERSION}/action/help_show?name={action}"


def call(
    settings: Settings, base: str, action: str, params: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Run one action; return the HTTP status and CKAN's response envelope."""
    envelope: dict[str, Any] = {"help": help_url(base, action)}
    function = ACTIONS.get(action)
    if function is None:
        envelope.update(
            success=False,
            error={
                "__type": "Bad Request",
                "message": f"Bad request - Action name not known: {action}",
            },
        )
        return 400, envelope
    try:
        result = function(settings, base, params)
    except ActionError as exc:
        envelope.update(success=False, error=exc.error)
        return exc.status, envelope
    except CatalogueError as exc:
        envelope.update(success=False, error={"__type": "Validation Error", "message": str(exc)})
        return 409, envelope
    envelope.update(success=True, result=result)
    return 200, envelope
