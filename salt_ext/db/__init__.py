"""PostgreSQL access: a pooled, tenant-scoped connection and versioned migrations."""

from salt_ext.db.pool import Database, database_error

__all__ = ["Database", "database_error"]
