"""Declarative base and column helpers shared by every model."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import ClassVar

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Table
from sqlalchemy.orm import DeclarativeBase

# Integers that hold credits: 1 credit = 1e-6 USD, so a large wallet passes 2**31.
Credits = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model maps one table (none maps a join or a select), so ``Model.__table__`` is a Table.
    __table__: ClassVar[Table]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A public id such as ``req_3f9a...``: unguessable, URL-safe, sortable by nothing."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


UTCDateTime = DateTime(timezone=False)  # stored as naive UTC everywhere
