"""The declarative base every domain's models share, with a stable constraint naming convention."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable names make Alembic migrations reproducible and let errors name the constraint that fired.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata
