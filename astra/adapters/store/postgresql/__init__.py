"""The PostgreSQL store: the same port as the JSON store, for platforms past one machine."""

from .migrations import SchemaMismatch
from .store import PostgresStore

__all__ = ["PostgresStore", "SchemaMismatch"]
