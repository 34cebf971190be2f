"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from flask_migrate import check

from tests.conftest import PROJECT_ROOT


def test_the_models_match_the_migrated_database(app):
    # The session's database was built by `upgrade`; autogenerate must find nothing to add.
    with app.app_context():
        check(directory=str(PROJECT_ROOT / "migrations"))
