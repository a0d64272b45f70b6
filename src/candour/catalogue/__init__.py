"""The open data catalogue: safe outputs and non-personal data, published in standard forms.

Publishing (a study publishes its released output with one call)::

    dataset = publish_release(settings, "REL-…", keywords=["falls", "fire"])
    dataset = publish_file(settings, Path("road_surface_temperatures.csv"), title=…,
                           description=…, publisher=…, declared_by="ian",
                           declare_non_personal=True)

Every publish runs :func:`check_publishable` (no person-level column or value, no count below
the data use's threshold) and writes CSV, JSON, Parquet and CSVW metadata under
``<home>/catalogue/<name>/``. Reading: :func:`list_datasets`, :func:`get_dataset`,
:func:`search_datasets`; machine interfaces in :mod:`candour.catalogue.dcat` (DCAT-AP JSON-LD)
and :mod:`candour.catalogue.ckan` (CKAN Action API read actions). See docs/catalogue.md.
"""

from candour.catalogue.model import (
    DEFAULT_LICENCE,
    FREQUENCIES,
    LICENCES,
    CatalogueError,
    Column,
    Dataset,
    Declaration,
    Licence,
    NotFound,
    Organisation,
    PublishRefused,
    Resource,
)
from candour.catalogue.publish import DECLARER_ROLES, publish_file, publish_release
from candour.catalogue.query import (
    BadQuery,
    SearchResult,
    catalogue_dir,
    dataset_file,
    get_dataset,
    get_organisation,
    get_resource,
    list_datasets,
    list_organisations,
    search_datasets,
)
from candour.catalogue.safety import check_publishable

__all__ = [
    "DECLARER_ROLES",
    "DEFAULT_LICENCE",
    "FREQUENCIES",
    "LICENCES",
    "BadQuery",
    "CatalogueError",
    "Column",
    "Dataset",
    "Declaration",
    "Licence",
    "NotFound",
    "Organisation",
    "PublishRefused",
    "Resource",
    "SearchResult",
    "catalogue_dir",
    "check_publishable",
    "dataset_file",
    "get_dataset",
    "get_organisation",
    "get_resource",
    "list_datasets",
    "list_organisations",
    "publish_file",
    "publish_release",
    "search_datasets",
]
