"""The schema check: good queries pass, each kind of broken query is named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.sql import parse_query_file
from shared.tools.sqlcheck import QUERY_DIRS, check_query, check_tree, load_schema, main

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = sorted((REPO / "migrations" / "sql").glob("*.sql"))
SCHEMA = load_schema(MIGRATIONS)

TENANT_COLS = "id, name, version, created_at, updated_at"
UPSERT = f"INSERT INTO tenants AS t ({TENANT_COLS}) VALUES ($1, $2, 1, now(), now())"

GOOD = {
    "params_and_casts": "SELECT id, name FROM tenants WHERE id = $1::uuid AND version > $2::int",
    "order_limit_offset": (
        "SELECT id, name FROM tenants WHERE deleted_at IS NULL "
        "ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"
    ),
    "any_array": "SELECT id FROM api_keys WHERE tenant_id = ANY($1::uuid[])",
    "advisory_lock": "SELECT pg_advisory_xact_lock(hashtext($1))",
    "notify_without_from": "SELECT pg_notify($1, $2)",
    "coalesce_max": "SELECT coalesce(max(position), 0) AS position FROM events WHERE stream = $1",
    "now_and_interval": "SELECT id FROM api_keys WHERE created_at > now() - interval '1 day'",
    "jsonb_operators": "SELECT data->>'name' AS name FROM events WHERE data @> $1::jsonb",
    "join_group_by": (
        "SELECT t.id, count(k.id) AS keys FROM tenants t "
        "LEFT JOIN api_keys k ON k.tenant_id = t.id AND k.revoked_at IS NULL "
        "GROUP BY t.id ORDER BY keys DESC"
    ),
    "join_using": "SELECT id FROM tenants JOIN api_keys USING (id)",
    "cte": (
        "WITH live AS (SELECT id FROM tenants WHERE deleted_at IS NULL) "
        "SELECT k.id, k.name FROM api_keys k JOIN live ON live.id = k.tenant_id"
    ),
    "correlated_exists": (
        "SELECT id FROM tenants t WHERE EXISTS "
        "(SELECT 1 FROM api_keys k WHERE k.tenant_id = t.id AND revoked_at IS NULL)"
    ),
    "in_subquery": "SELECT id FROM api_keys WHERE tenant_id IN (SELECT id FROM tenants)",
    "union": "SELECT name FROM tenants UNION ALL SELECT name FROM providers",
    "unnest_alias": "SELECT x.id FROM unnest($1::uuid[]) AS x(id)",
    "array_membership": "SELECT model FROM routes WHERE $1 = ANY(tenant_ids)",
    "distinct_on": "SELECT DISTINCT ON (stream) stream, position FROM events ORDER BY stream",
    "window": "SELECT row_number() OVER (PARTITION BY tenant_id ORDER BY created_at) FROM api_keys",
    "insert_returning": (
        "INSERT INTO events (stream, stream_version, type, data, actor) "
        "VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING position, created_at"
    ),
    "insert_without_column_list": "INSERT INTO tenants VALUES ($1, $2, 1, now(), now(), NULL)",
    "insert_select": (
        f"INSERT INTO tenants ({TENANT_COLS}) "
        "SELECT id, name, 1, created_at, created_at FROM providers WHERE id = $1"
    ),
    "insert_with_cte": (
        "WITH src AS (SELECT $1::uuid AS id) "
        f"INSERT INTO tenants ({TENANT_COLS}) SELECT id, 'x', 1, now(), now() FROM src"
    ),
    "upsert_excluded": (
        f"{UPSERT} ON CONFLICT (id) DO UPDATE "
        "SET name = excluded.name, version = t.version + 1 WHERE t.deleted_at IS NULL "
        "RETURNING id, version, (xmax = 0) AS inserted"
    ),
    "upsert_do_nothing": f"{UPSERT} ON CONFLICT DO NOTHING",
    "upsert_on_constraint": f"{UPSERT} ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING",
    "upsert_partial_index": (
        "INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, created_at) "
        "VALUES ($1, $2, $3, $4, $5, now()) "
        "ON CONFLICT (key_hash) WHERE revoked_at IS NULL DO NOTHING"
    ),
    "update_returning_star": (
        "UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1 RETURNING *"
    ),
    "update_tuple_and_default": (
        "UPDATE routes SET (upstream_model, tenant_ids) = ($2, DEFAULT) WHERE id = $1"
    ),
    "update_from": (
        "UPDATE api_keys AS k SET revoked_at = now() FROM tenants t "
        "WHERE t.id = k.tenant_id AND t.deleted_at IS NOT NULL RETURNING k.id, t.name"
    ),
    "update_from_join": (
        "UPDATE api_keys SET revoked_at = now() FROM tenants t JOIN routes r ON r.id = t.id "
        "WHERE t.id = api_keys.tenant_id"
    ),
    "update_correlated": (
        "UPDATE tenants SET version = (SELECT max(stream_version) FROM events "
        "WHERE stream = 'tenant-' || tenants.id::text) WHERE id = $1"
    ),
    "delete_using": (
        "DELETE FROM api_keys k USING tenants t "
        "WHERE t.id = k.tenant_id AND t.deleted_at IS NOT NULL RETURNING k.id"
    ),
    "delete_correlated_bare_outer_column": (
        "DELETE FROM tenants WHERE NOT EXISTS "
        "(SELECT 1 FROM api_keys WHERE tenant_id = tenants.id AND version > 1)"
    ),
    "data_modifying_cte": (
        "WITH gone AS (DELETE FROM api_keys WHERE revoked_at IS NOT NULL RETURNING id) "
        "SELECT count(*) FROM gone"
    ),
    "unquoted_identifiers_fold": "SELECT ID, Name FROM Tenants",
}

BAD = {
    # (query, text every reported problem list must contain)
    "select_list": ("SELECT id, no_such_col FROM tenants", "no_such_col"),
    "where": ("SELECT id FROM tenants WHERE no_such_col = $1", "no_such_col"),
    "qualified_in_join_on": (
        "SELECT t.id FROM tenants t JOIN api_keys k ON k.no_such_col = t.id",
        "k.no_such_col",
    ),
    "order_by": ("SELECT id FROM tenants ORDER BY no_such_col", "no_such_col"),
    "group_by": ("SELECT count(*) FROM tenants GROUP BY no_such_col", "no_such_col"),
    "subquery": (
        "SELECT id FROM api_keys WHERE tenant_id IN (SELECT id FROM tenants WHERE no_such_col)",
        "no_such_col",
    ),
    "cte_column": ("WITH c AS (SELECT id FROM tenants) SELECT c.name FROM c", "c.name"),
    "alias_not_in_scope": ("SELECT nope.id FROM tenants t", "nope"),
    "quoted_identifier_case": ('SELECT "Name" FROM tenants', "Name"),
    "ambiguous": (
        "SELECT id FROM tenants t JOIN api_keys k ON k.tenant_id = t.id",
        "ambiguous column id",
    ),
    "table_in_from": ("SELECT id FROM no_such_table", "unknown table no_such_table"),
    "table_in_join": (
        "SELECT t.id FROM tenants t JOIN no_such_table k ON k.tenant_id = t.id",
        "unknown table no_such_table",
    ),
    "table_in_subquery": (
        "SELECT id FROM tenants WHERE id IN (SELECT id FROM no_such_table)",
        "unknown table no_such_table",
    ),
    "table_in_insert": (
        "INSERT INTO no_such_table (id) VALUES ($1)",
        "unknown table no_such_table",
    ),
    "table_in_update": ("UPDATE no_such_table SET id = $1", "unknown table no_such_table"),
    "table_in_delete": ("DELETE FROM no_such_table", "unknown table no_such_table"),
    "insert_column_list": (
        "INSERT INTO tenants (id, no_such_col) VALUES ($1, $2)",
        "tenants.no_such_col in INSERT column list",
    ),
    "insert_select_source": (
        "INSERT INTO tenants (id, name) SELECT id, no_such_col FROM providers",
        "no_such_col",
    ),
    "insert_values_subquery": (
        "INSERT INTO tenants (id, name) VALUES ($1, (SELECT no_such_col FROM providers))",
        "no_such_col",
    ),
    "insert_arity": ("INSERT INTO tenants (id, name) VALUES ($1)", "1 values for 2 columns"),
    "insert_returning": (
        f"INSERT INTO tenants ({TENANT_COLS}) VALUES ($1, $2, 1, now(), now()) "
        "RETURNING no_such_col",
        "no_such_col",
    ),
    "insert_returning_excluded": (f"{UPSERT} RETURNING excluded.id", "excluded"),
    "on_conflict_target": (
        f"{UPSERT} ON CONFLICT (no_such_col) DO NOTHING",
        "tenants.no_such_col in ON CONFLICT target",
    ),
    "on_conflict_set_target": (
        f"{UPSERT} ON CONFLICT (id) DO UPDATE SET no_such_col = excluded.name",
        "tenants.no_such_col in ON CONFLICT DO UPDATE SET",
    ),
    "on_conflict_set_excluded": (
        f"{UPSERT} ON CONFLICT (id) DO UPDATE SET name = excluded.no_such_col",
        "excluded.no_such_col",
    ),
    "on_conflict_where": (
        f"{UPSERT} ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE t.no_such_col",
        "t.no_such_col",
    ),
    "on_conflict_ambiguous": (
        f"{UPSERT} ON CONFLICT (id) DO UPDATE SET version = version + 1",
        "ambiguous column version",
    ),
    "update_set_target": (
        "UPDATE tenants SET no_such_col = $1 WHERE id = $2",
        "tenants.no_such_col in SET",
    ),
    "update_tuple_target": (
        "UPDATE tenants SET (name, no_such_col) = ($1, $2) WHERE id = $3",
        "tenants.no_such_col in SET",
    ),
    "update_set_value": ("UPDATE tenants SET name = no_such_col WHERE id = $1", "no_such_col"),
    "update_where": ("UPDATE tenants SET name = $1 WHERE no_such_col = $2", "no_such_col"),
    "update_returning": ("UPDATE tenants SET name = $1 RETURNING no_such_col", "no_such_col"),
    "update_table_name_hidden_by_alias": (
        "UPDATE tenants t SET name = $1 WHERE tenants.id = $2",
        "tenants",
    ),
    "delete_returning": ("DELETE FROM tenants WHERE id = $1 RETURNING no_such_col", "no_such_col"),
    "delete_correlated": (
        "DELETE FROM tenants WHERE NOT EXISTS "
        "(SELECT 1 FROM api_keys WHERE tenant_id = tenants.no_such_col)",
        "tenants.no_such_col",
    ),
    "data_modifying_cte": (
        "WITH gone AS (UPDATE api_keys SET no_such_col = 1 RETURNING id) SELECT * FROM gone",
        "api_keys.no_such_col in SET",
    ),
    "syntax_error": ("SELECT * FORM tenants", "syntax error"),
    "unterminated_string": ("SELECT 'abc FROM tenants", "syntax error"),
    "update_without_set": ("UPDATE tenants SET WHERE id = $1", "syntax error"),
    "two_statements": ("SELECT 1; SELECT 2", "exactly one statement"),
}


@pytest.mark.parametrize("sql", GOOD.values(), ids=GOOD.keys())
def test_good_query_passes(sql: str) -> None:
    assert check_query(sql, SCHEMA) == []


@pytest.mark.parametrize(("sql", "needle"), BAD.values(), ids=BAD.keys())
def test_bad_query_is_named(sql: str, needle: str) -> None:
    problems = check_query(sql, SCHEMA)
    assert problems, f"not rejected: {sql}"
    assert any(needle in problem for problem in problems), problems


def test_statement_it_cannot_check_is_reported() -> None:
    assert check_query("LOCK TABLE events IN EXCLUSIVE MODE", SCHEMA) == [
        "cannot check a COMMAND statement, only SELECT/INSERT/UPDATE/DELETE"
    ]


def test_schema_of_the_migrations() -> None:
    assert {"events", "tenants", "api_keys", "providers", "routes", "snapshots"} <= set(SCHEMA)
    assert SCHEMA["events"]["position"] == "bigint"
    assert SCHEMA["routes"]["tenant_ids"] == "uuid[]"
    assert "events_stream_version_key" not in SCHEMA["events"]  # constraints are not columns


def _migrations(tmp_path: Path, *files: str) -> list[Path]:
    paths = []
    for i, text in enumerate(files, start=1):
        path = tmp_path / f"{i:04d}.sql"
        path.write_text(text)
        paths.append(path)
    return paths


def test_load_schema_applies_migrations_in_order(tmp_path: Path) -> None:
    paths = _migrations(
        tmp_path,
        """
        -- first
        CREATE TABLE a (
            id int PRIMARY KEY,
            x text NOT NULL,
            y text,
            CONSTRAINT a_x_key UNIQUE (x)
        );
        CREATE TABLE b (id int);
        CREATE INDEX a_x_idx ON a (x);
        CREATE TABLE m (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
        """,
        """
        ALTER TABLE a ADD COLUMN z jsonb NOT NULL DEFAULT '{}', DROP COLUMN y;
        ALTER TABLE a RENAME COLUMN x TO xx;
        ALTER TABLE a ALTER COLUMN id TYPE bigint;
        ALTER TABLE IF EXISTS missing ADD COLUMN q int;
        CREATE TABLE IF NOT EXISTS a (other int);
        CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        DROP TABLE b;
        COMMENT ON TABLE a IS 'renamed x';
        """,
    )
    schema = load_schema(paths)
    assert schema == {
        "a": {"id": "bigint", "xx": "text", "z": "jsonb"},
        "m": {"at": "timestamptz", "v": "int"},
        "m_2024": {"at": "timestamptz", "v": "int"},
    }
    assert check_query("SELECT xx, z FROM a", schema) == []
    assert any("x" in p for p in check_query("SELECT x FROM a", schema))
    assert any("y" in p for p in check_query("UPDATE a SET y = $1", schema))
    assert check_query("SELECT id FROM b", schema) == ["unknown table b"]


@pytest.mark.parametrize(
    ("migration", "message"),
    [
        ("ALTER TABLE a DROP COLUMN nope;", "no column a.nope"),
        ("ALTER TABLE a RENAME COLUMN nope TO x;", "no column a.nope"),
        ("ALTER TABLE nope ADD COLUMN x int;", "no table nope"),
        ("ALTER TABLE a ADD COLUMN id int;", "column a.id exists"),
        ("DROP TABLE nope;", "no table nope"),
        ("CREATE TABLE a (id int);", "table a already exists"),
        ("CREATE TABLE (;", "syntax error"),
    ],
)
def test_load_schema_rejects_broken_migrations(
    tmp_path: Path, migration: str, message: str
) -> None:
    paths = _migrations(tmp_path, "CREATE TABLE a (id int);", migration)
    with pytest.raises(ValueError, match=r"0002\.sql") as info:
        load_schema(paths)
    assert message in str(info.value)


def _copy_tree(dest: Path) -> Path:
    shutil.copytree(REPO / "migrations" / "sql", dest / "migrations" / "sql")
    for name in QUERY_DIRS:
        for path in (REPO / name).rglob("*.sql"):
            target = dest / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return dest


def _query_count(root: Path) -> int:
    files = [p for name in QUERY_DIRS for p in (root / name).rglob("*.sql")]
    return sum(len(parse_query_file(p.read_text(), str(p))) for p in files)


BROKEN_FILE = """\
-- name: fine
SELECT id FROM tenants WHERE id = $1;

-- name: bad_column
UPDATE tenants SET no_such_col = $2 WHERE id = $1;

-- name: bad_table
SELECT id FROM no_such_table;
"""


def test_real_tree_is_clean() -> None:
    assert check_tree(REPO) == []


def test_tree_with_a_broken_file(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    assert check_tree(root) == []
    (root / "data_plane" / "sql").mkdir(parents=True, exist_ok=True)
    (root / "data_plane" / "sql" / "broken.sql").write_text(BROKEN_FILE)
    assert check_tree(root) == [
        "data_plane/sql/broken.sql:bad_column: unknown column tenants.no_such_col in SET",
        "data_plane/sql/broken.sql:bad_table: unknown table no_such_table",
    ]


def test_tree_with_an_unreadable_query_file(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / "shared" / "sql").mkdir(parents=True, exist_ok=True)
    (root / "shared" / "sql" / "dup.sql").write_text("-- name: q\nSELECT 1;\n-- name: q\nSELECT 2;")
    problems = check_tree(root)
    assert len(problems) == 1
    assert "shared/sql/dup.sql" in problems[0]
    assert "defined twice" in problems[0]


def test_main_reports_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_tree(tmp_path)
    assert main([str(root)]) == 0
    expected = f"sql check: {_query_count(root)} queries OK against {len(SCHEMA)} tables"
    assert capsys.readouterr().out.strip() == expected


def _run_cli(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.tools.sqlcheck", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_exit_codes(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    ok = _run_cli(root)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("sql check: ")

    (root / "control_plane" / "sql").mkdir(parents=True, exist_ok=True)
    (root / "control_plane" / "sql" / "broken.sql").write_text(BROKEN_FILE)
    failed = _run_cli(root)
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert "control_plane/sql/broken.sql:bad_column: " in lines[0]
    assert "no_such_col" in lines[0]
    assert "control_plane/sql/broken.sql:bad_table: unknown table no_such_table" in lines
    assert "queries OK" not in failed.stdout
