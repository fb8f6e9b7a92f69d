"""Database plumbing: engines for every back end, schema migrations, transaction retries.

SQLite is the embedded default (a file under .reconciler/); MySQL 8, MariaDB, TiDB
(`mysql+pymysql://`) and PostgreSQL (`postgresql+psycopg://`) are selected by URL. The
portability rules cited by number are in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, exc, inspect, text
from sqlalchemy.engine import URL, Connection, make_url

from reconciler.diagnostics import ReconcilerError

T = TypeVar("T")

DEFAULT_DIR = ".reconciler"
DEFAULT_FILE = "registry.sqlite"
URL_VARIABLE = "RECONCILER_DB_URL"

# MySQL deadlock / lock wait timeout; TiDB write conflicts, schema changes, GC life time, ...
RETRY_MYSQL_CODES = {1213, 1205, 8002, 8005, 8022, 8028, 9007}
# Connection lost or refused mid-transaction (MySQL client errors).
DROPPED_MYSQL_CODES = {2006, 2013, 2055}
RETRY_SQLSTATES = {"40001", "40P01"}  # PostgreSQL serialization failure, deadlock
MAX_ATTEMPTS = 8
SCHEMA_HEAD = "0007"  # the newest migration in migrations/versions here (a test checks)


EMBEDDED = "embedded"  # --db / $RECONCILER_DB_URL spelling of the embedded default


def database_url(root: str, url: str | None, *, create: bool = True) -> URL:
    """--db, else $RECONCILER_DB_URL, else the embedded SQLite file under root/.reconciler/
    (with create, that folder is made, git-ignored, when missing).

    A blank URL is an error, never the embedded default: an unset CI secret arrives as an
    empty string, and falling back would throw away the record of every push. Under CI
    (CI=true) the embedded default is used only when asked for by name (`embedded`)."""
    text = _configured_url(url)
    if text is None or text == EMBEDDED:
        folder = os.path.join(root, DEFAULT_DIR)
        if create:
            os.makedirs(folder, exist_ok=True)
            ignore = os.path.join(folder, ".gitignore")
            if not os.path.exists(ignore):
                with open(ignore, "w", encoding="utf-8") as handle:
                    handle.write("# written by reconciler: the embedded database is not "
                                 "versioned\n*\n")
        return URL.create("sqlite", database=os.path.join(folder, DEFAULT_FILE))
    try:
        return make_url(text)
    except (exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ReconcilerError("--db: not a database URL (e.g. sqlite:///reg.db, "
                              "mysql+pymysql://user@host:3306/db, "
                              "postgresql+psycopg://user@host/db)") from None


def _configured_url(url: str | None) -> str | None:
    """The URL asked for (stripped), or None for the embedded default; a blank one, or none
    at all under CI, is refused."""
    if url is not None:
        if not url.strip():
            raise ReconcilerError("--db is empty: give a database URL, or `--db embedded` for "
                                  f"the SQLite file under {DEFAULT_DIR}/")
        return url.strip()
    variable = os.environ.get(URL_VARIABLE)
    if variable is not None:
        if not variable.strip():
            raise ReconcilerError(
                f"{URL_VARIABLE} is set but empty (an unset CI secret arrives as an empty "
                f"string): set it to the database URL, or to `{EMBEDDED}` for the SQLite file "
                f"under {DEFAULT_DIR}/")
        return variable.strip()
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        raise ReconcilerError(
            f"CI is set and no database is configured: set {URL_VARIABLE} (or --db) to the "
            f"registry's database; in CI the embedded SQLite file, which the job throws away, "
            f"is used only when asked for: --db {EMBEDDED}")
    return None


# Query options that carry credentials in some driver (PyMySQL's password=, libpq's
# password= and sslpassword=, tokens of managed services): hidden like the URL's password.
_SECRET_OPTION = re.compile(r"(?i)pass|pwd|secret|token|credential|auth")


def redacted(url: URL) -> str:
    """The URL with its password and every credential in its query hidden, for messages."""
    options = [f"{key}={'***' if _SECRET_OPTION.search(key) else value}"
               for key, values in url.query.items()
               for value in ([values] if isinstance(values, str) else values)]
    base = _hidden_userinfo(url.set(query={}).render_as_string(hide_password=True))
    return base + ("?" + "&".join(options) if options else "")


def _hidden_userinfo(rendered: str) -> str:
    """Everything between :// and the authority's last @ hidden when the parser split a password
    holding an unencoded @ (user:p@ss@host reads as password 'p', host 'ss@host')."""
    scheme, separator, rest = rendered.partition("://")
    authority, slash, path = rest.partition("/")
    if not separator or authority.count("@") < 2:
        return rendered
    return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"


def _secrets(url: URL) -> list[str]:
    """Every credential the URL holds, to scrub from messages that echo it."""
    values = [str(url.password)] if url.password else []
    if url.host and "@" in url.host:  # the tail of a password holding an unencoded @
        values.append(url.host.rpartition("@")[0])
    for key, value in url.query.items():
        if _SECRET_OPTION.search(key):
            values += [value] if isinstance(value, str) else list(value)
    return [value for value in values if value]


def is_embedded(url: URL) -> bool:
    """Whether the URL is a SQLite database (migrated automatically)."""
    return url.get_backend_name() == "sqlite"


def exists(url: URL) -> bool:
    """Whether there is a database to read without creating one: a server's always is; an
    embedded one is a file that connecting would create."""
    if not is_embedded(url) or url.database in (None, "", ":memory:"):
        return True
    return os.path.exists(url.database)


def make_engine(url: URL) -> Engine:
    """An engine configured for its back end (portability rule 9); a driver that is unknown or
    not installed is one clear error."""
    try:
        return _make_engine(url)
    except exc.NoSuchModuleError:
        raise ReconcilerError(f"--db: unknown database driver '{url.drivername}': use sqlite, "
                              "mysql+pymysql (MySQL, MariaDB, TiDB) or postgresql+psycopg"
                              ) from None
    except ImportError as error:
        extra = {"psycopg": "postgres", "pymysql": "apply"}.get(error.name or "")
        from reconciler.distribution import install_line

        hint = (install_line(extra) if extra else
                "use mysql+pymysql or postgresql+psycopg, which reconciler installs")
        raise ReconcilerError(f"--db: the driver of {url.drivername} ({error.name}) is not "
                              f"installed: {hint}") from None
    except (ValueError, TypeError) as error:  # an option the dialect cannot read
        raise connect_error(url, error) from None


def _make_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "mysql":
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        # ssl_ca, ssl_cert, ssl_key, ssl_verify_cert in the URL query pass through to PyMySQL
        # (managed TiDB requires TLS).
        return create_engine(url, pool_pre_ping=True, pool_recycle=1800,
                             isolation_level="REPEATABLE READ")
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_recycle=1800)
    raise ReconcilerError(f"unsupported database '{backend}': use sqlite, mysql+pymysql "
                          "(MySQL, MariaDB, TiDB) or postgresql+psycopg")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN,
    # so two writers serialise at the start instead of failing at their first write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL is still crash-safe (kill -9 never corrupts or half-writes); a power
    # loss may drop the last transactions, which the cursor then simply re-applies.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # SQLite's default page cache is 2 MiB: a backfill transaction of thousands of rows with
    # hash-keyed indexes outgrows it and spills pages to the WAL mid-transaction. Up to 64 MiB
    # (only what is used is allocated) keeps it in memory (bench/apply.py).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def connect_error(url: URL, error: BaseException) -> ReconcilerError:
    """One line saying the database cannot be reached, never a credential."""
    reason = error.orig if isinstance(error, exc.DBAPIError) and error.orig else error
    if isinstance(reason, OSError) and reason.strerror:
        text = reason.strerror + (f": {reason.filename}" if reason.filename else "")
        missing = [f"{key}={value}" for key, value in url.query.items()
                   if key.startswith("ssl") and isinstance(value, str) and "/" in value
                   and not os.path.exists(value)]
        if missing:
            text += f" ({', '.join(missing)} in the URL)"
    else:
        text = " ".join(str(reason).split()) or type(reason).__name__
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return ReconcilerError(f"cannot use database {redacted(url)}: {text}")


def connect(engine: Engine, url: URL) -> None:
    """Open (and pool) one connection now, so that any way the URL cannot work (a refused
    port, a bad charset or timeout option, a missing TLS file) is one clear error here."""
    try:
        engine.connect().close()
    except (exc.SQLAlchemyError, OSError, ValueError, TypeError, AttributeError, LookupError
            ) as error:  # drivers raise these for bad options before they reach the server
        raise connect_error(url, error) from None


def is_transient(error: BaseException) -> bool:
    """Whether retrying the whole transaction may succeed (portability rule 3)."""
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    code = orig.args[0] if orig is not None and orig.args else None
    if isinstance(code, int) and code in RETRY_MYSQL_CODES | DROPPED_MYSQL_CODES:
        return True
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in RETRY_SQLSTATES:
        return True
    return isinstance(error, exc.OperationalError) and "database is locked" in str(orig)


def with_retries(attempt: Callable[[], T], *, on_retry: Callable[[BaseException, int], None]
                 | None = None, max_attempts: int = MAX_ATTEMPTS) -> T:
    """Run attempt() (one whole, idempotent transaction), retrying transient failures with
    jittered exponential backoff."""
    for number in range(1, max_attempts + 1):
        try:
            return attempt()
        except exc.DBAPIError as error:
            if number == max_attempts or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry(error, number)
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** number)))
    raise AssertionError("unreachable")


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.path.join(os.path.dirname(__file__),
                                                           "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    with engine.begin() as connection:
        upgrade_on(connection)


def upgrade_on(connection: Connection) -> None:
    """Bring the schema to the newest migration, in the connection's transaction."""
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(current revision of the database, newest revision this version knows).

    Read straight from Alembic's version table, so a routine apply does not import Alembic.
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None, SCHEMA_HEAD
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return current, SCHEMA_HEAD


def open_database(url: URL, *, migrate: bool) -> Engine:
    """An engine whose schema is current: migrated here when allowed (embedded SQLite or
    `db upgrade`), else an error telling the user to run `reconciler db upgrade`."""
    engine = make_engine(url)
    try:
        if exists(url):
            connect(engine, url)
        ensure_schema(engine, url, migrate=migrate)
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade_database(root: str, url: str | None) -> tuple[str, str]:
    """Create or migrate the schema of root's database to the newest revision: (the database
    as shown, the revision)."""
    located = database_url(root, url)
    engine = open_database(located, migrate=True)
    try:
        return redacted(located), schema_state(engine)[0] or ""
    finally:
        engine.dispose()


def ensure_schema(engine: Engine, url: URL, *, migrate: bool) -> None:
    """Make sure the schema is current (see open_database)."""
    try:
        current, head = schema_state(engine)
        if current != head:
            if not (migrate or is_embedded(url)):
                raise ReconcilerError(
                    f"database {redacted(url)} is at schema {current or 'none'}, this reconciler "
                    f"needs {head}: run `reconciler db upgrade --db ...` first")
            if current is None and is_embedded(url):
                create_at_head(engine)
            else:
                upgrade(engine)
    except exc.DBAPIError as error:
        raise connect_error(url, error) from None


def create_at_head(engine: Engine) -> None:
    """Give an empty database the newest schema directly: the tables as `tables.py` declares
    them (a test proves they equal what the migrations build), stamped with the head revision,
    as Alembic's documentation suggests for new databases. Saves importing and running Alembic
    on every first apply of an embedded database (each CI run starts with one). A database that
    already has tables is migrated by Alembic instead."""
    from reconciler.registry.tables import METADATA
    from reconciler.registry.views import create_views

    with engine.begin() as connection:
        if inspect(connection).get_table_names():  # not empty (or another apply got here first)
            upgrade_on(connection)
            return
        METADATA.create_all(connection)
        create_views(connection)
        connection.execute(text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
                           {"head": SCHEMA_HEAD})
