"""The metadata store: SQL through SQLAlchemy Core, schema managed by Alembic."""
