"""`one_of`: a column among a bound list, as one array parameter on Postgres and an expanding
IN elsewhere, with the same rows either way."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg2

from app.db import one_of
from app.extensions import db
from app.models import User

STORED = [f"u{n}" for n in range(5)]


@pytest.mark.parametrize(
    "wanted", [[], ["u1"], ["u3", "u1", "u1", "nobody"], [f"u{n}" for n in range(1000)]]
)
def test_the_rows_named_by_the_list_are_found(app, wanted):
    with app.app_context():
        db.session.execute(text("INSERT INTO users (id) VALUES (:id)"), [{"id": u} for u in STORED])
        postgres = db.engine.dialect.name == "postgresql"
        query = select(User.id).where(one_of(User.id, "ids", postgres)).order_by(User.id)
        assert db.session.scalars(query, {"ids": wanted}).all() == sorted(set(wanted) & set(STORED))


def test_postgres_binds_one_array_and_other_engines_a_parameter_per_item():
    on_postgres = select(User.id).where(one_of(User.id, "ids", postgres=True))
    elsewhere = select(User.id).where(one_of(User.id, "ids", postgres=False))
    on_postgres_sql = str(on_postgres.compile(dialect=psycopg2.dialect()))
    assert "users.id = ANY (CAST(%(ids)s AS VARCHAR(128)[]))" in on_postgres_sql
    assert "IN (__[POSTCOMPILE_ids])" in str(elsewhere.compile(dialect=sqlite.dialect()))
