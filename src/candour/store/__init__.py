"""The operational store: SQLAlchemy 2 models, sessions and Alembic migrations.

SQLite inside the data home by default; PostgreSQL when ``CANDOUR_DATABASE_URL`` is set. Every
state change goes through :func:`transaction`, so a failure leaves nothing half-written.
"""

from candour.store import catalogue as _catalogue  # noqa: F401  (registers its tables)
from candour.store import choices as _choices  # noqa: F401  (registers its tables)
from candour.store import disclosure as _disclosure  # noqa: F401  (registers its tables)
from candour.store import gate as _gate  # noqa: F401  (registers its tables)
from candour.store import linkage as _linkage  # noqa: F401  (registers its tables)
from candour.store import register as _register  # noqa: F401  (registers its tables)
from candour.store import web as _web  # noqa: F401  (registers its tables)
from candour.store.database import (
    StoreError,
    current_revision,
    dispose,
    engine_for,
    head_revision,
    migrate,
    transaction,
)
from candour.store.models import Base, HomeInfo, IngestBatch

__all__ = [
    "Base",
    "HomeInfo",
    "IngestBatch",
    "StoreError",
    "current_revision",
    "dispose",
    "engine_for",
    "head_revision",
    "migrate",
    "transaction",
]
