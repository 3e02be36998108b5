"""Storage: one async database interface over PostgreSQL and SQLite, its
migrations, and the per-document event log with snapshots."""

from eventstore.database import Connection as Connection
from eventstore.database import Database as Database
from eventstore.database import Row as Row
from eventstore.errors import DatabaseUnavailableError as DatabaseUnavailableError
from eventstore.errors import EventStoreError as EventStoreError
from eventstore.errors import UniqueViolationError as UniqueViolationError
from eventstore.factory import open_database as open_database
from eventstore.migrations import apply_migrations as apply_migrations
