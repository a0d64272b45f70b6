import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from candour.config import Settings
from candour.store import IngestBatch, current_revision, head_revision, migrate, transaction


def _batch(**overrides: object) -> IngestBatch:
    values: dict[str, object] = {
        "source": "gp_registrations",
        "file_name": "gp.csv",
        "content_sha256": "a" * 64,
        "rows_read": 10,
        "rows_accepted": 9,
        "rows_quarantined": 1,
        "status": "done",
    }
    values.update(overrides)
    return IngestBatch(**values)


def test_migrations_reach_head_and_are_repeatable(store_settings: Settings):
    store_settings.home.mkdir(parents=True)
    assert current_revision(store_settings) is None
    assert migrate(store_settings) == head_revision()
    assert migrate(store_settings) == head_revision()
    assert current_revision(store_settings) == head_revision()


def test_a_failed_transaction_leaves_nothing(store_settings: Settings):
    store_settings.home.mkdir(parents=True)
    migrate(store_settings)
    with pytest.raises(RuntimeError):
        with transaction(store_settings) as session:
            session.add(_batch())
            session.flush()
            raise RuntimeError("the ingest failed half way")
    with transaction(store_settings) as session:
        assert session.scalar(select(func.count()).select_from(IngestBatch)) == 0


def test_the_same_file_cannot_be_a_second_batch_of_a_source(store_settings: Settings):
    store_settings.home.mkdir(parents=True)
    migrate(store_settings)
    with transaction(store_settings) as session:
        session.add(_batch())
    with pytest.raises(IntegrityError):
        with transaction(store_settings) as session:
            session.add(_batch(file_name="renamed.csv"))
    with transaction(store_settings) as session:
        session.add(_batch(source="ae_attendances"))  # another source may send the same bytes
        stored = session.scalars(select(IngestBatch).order_by(IngestBatch.id)).all()
        assert [b.source for b in stored] == ["gp_registrations", "ae_attendances"]
        assert stored[0].created_at is not None
