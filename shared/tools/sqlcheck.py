"""Check every named query against the schema the migrations build.

The schema comes from `migrations/sql/*.sql`, applied in filename order; the
queries from the `.sql` files under `shared/`, `control_plane/` and
`data_plane/`. Each query must parse as PostgreSQL and name only tables and
columns that exist, without ambiguity.

    python -m shared.tools.sqlcheck [ROOT]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

from shared.sql import parse_query_file

__all__ = ["check_query", "check_tree", "load_schema", "main"]

Schema = dict[str, dict[str, str]]
QUERY_DIRS = ("shared", "control_plane", "data_plane")
_SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})
_DML = (exp.Insert, exp.Update, exp.Delete)


def _parse(sql: str) -> list[exp.Expr]:
    try:
        statements = sqlglot.parse(sql, read="postgres")
    except ParseError as e:
        err = e.errors[0] if e.errors else {}
        at = f" at line {err.get('line')}, col {err.get('col')} near {err.get('highlight')!r}"
        raise ValueError(f"syntax error: {err.get('description', e)}{at if err else ''}") from e
    except TokenError as e:
        raise ValueError(f"syntax error: {e}") from e
    return [normalize_identifiers(s, dialect="postgres") for s in statements if s is not None]


def _type(coldef: exp.Expr, arg: str = "kind") -> str:
    kind = coldef.args.get(arg)
    return kind.sql("postgres").lower() if isinstance(kind, exp.Expr) else "unknown"


def _require(ok: object, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _apply_ddl(schema: Schema, stmt: exp.Expr) -> None:
    """Apply one migration statement to `schema`; statements that don't change columns pass."""
    if isinstance(stmt, exp.Command):  # sqlglot could not parse it; fine unless it is table DDL
        words = f"{stmt.this} {stmt.expression}".upper().split()
        table_ddl = words[0] in ("CREATE", "ALTER", "DROP") and "TABLE" in words[1:3]
        _require(not table_ddl, f"cannot interpret {' '.join(words[:4])} ...")
    elif isinstance(stmt, exp.Create) and stmt.kind == "TABLE":
        target = stmt.this
        name = (target.this if isinstance(target, exp.Schema) else target).name
        if name in schema and stmt.args.get("exists"):
            return
        _require(name not in schema, f"table {name} already exists")
        columns: dict[str, str] = {}  # LIKE other / PARTITION OF parent copy its columns
        for prop in stmt.find_all(exp.LikeProperty, exp.PartitionedOfProperty):
            columns.update(schema.get(prop.this.name, {}))
        defs = target.expressions if isinstance(target, exp.Schema) else []
        schema[name] = columns | {c.name: _type(c) for c in defs if isinstance(c, exp.ColumnDef)}
    elif isinstance(stmt, exp.Drop) and stmt.kind == "TABLE":
        for table in stmt.args.get("tables") or []:
            gone = schema.pop(table.name, None)
            _require(gone is not None or stmt.args.get("exists"), f"no table {table.name} to drop")
    elif isinstance(stmt, exp.Alter) and stmt.args.get("kind") == "TABLE":
        name = stmt.this.name
        if name not in schema and stmt.args.get("exists"):
            return
        _require(name in schema, f"no table {name} to alter")
        cols = schema[name]
        for action in stmt.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef):
                new = action.name not in cols
                _require(new or action.args.get("exists"), f"column {name}.{action.name} exists")
                cols.setdefault(action.name, _type(action))
            elif isinstance(action, exp.Drop) and action.kind == "COLUMN":
                for col in action.args.get("tables") or []:
                    dropped = cols.pop(col.name, None)
                    _require(dropped or action.args.get("exists"), f"no column {name}.{col.name}")
            elif isinstance(action, exp.RenameColumn):
                old, new_name = action.this.name, action.args["to"].name
                _require(old in cols, f"no column {name}.{old} to rename")
                cols[new_name] = cols.pop(old)
            elif isinstance(action, exp.AlterColumn) and action.args.get("dtype"):
                cols[action.name] = _type(action, "dtype")
            elif isinstance(action, exp.AlterRename):
                schema[action.this.name] = schema.pop(name)


def load_schema(paths: list[Path]) -> Schema:
    """Apply the migrations in order; returns `{table: {column: type}}`."""
    schema: Schema = {}
    for path in paths:
        try:
            for stmt in _parse(path.read_text()):
                _apply_ddl(schema, stmt)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
    return schema


def _known_columns(node: exp.Expr, source: object, schema: Schema) -> set[str] | None:
    """The column names a FROM item exposes, or None when they can't be known."""
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return {c.name for c in alias.columns}
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        return set(schema.get(source.name, ())) or None
    query = getattr(source, "expression", None)
    if isinstance(query, exp.Query) and "*" not in query.named_selects:
        return set(query.named_selects)
    return None


def _check_select(query: exp.Query, schema: Schema, mapping: MappingSchema) -> list[str]:
    """Unknown qualified and ambiguous bare columns per scope, then sqlglot's own resolution."""
    query = query.copy()
    for col in list(query.find_all(exp.Column)):
        if col.name in _SYSTEM_COLUMNS:
            col.replace(exp.null())
    problems: list[str] = []
    for scope in traverse_scope(query):
        sources = {n: _known_columns(*s, schema) for n, s in scope.selected_sources.items()}
        select = scope.expression
        skip = {e.alias for e in select.expressions if isinstance(e, exp.Alias)}
        for join in select.args.get("joins") or []:
            skip.update(i.name for i in join.args.get("using") or [])
        for col in scope.columns:
            name, table = col.name, col.table
            known = sources.get(table)
            if isinstance(col.this, exp.Star) or (not table and name in skip):
                continue
            if table and known is not None and name not in known:
                problems.append(f"unknown column {table}.{name}")
            hits = sorted(t for t, cols in sources.items() if cols is not None and name in cols)
            if not table and len(hits) > 1:
                problems.append(f"ambiguous column {name} (in {', '.join(hits)})")
    if problems:
        return problems
    try:
        qualify(query, schema=mapping, dialect="postgres", validate_qualify_columns=True)
    except SqlglotError as e:
        return [str(e)]
    return []


def _select(
    columns: list[exp.Expr], with_: object, sources: list[exp.Expr], where: object = None
) -> exp.Select:
    """A SELECT over the sources of a DML statement, so its expressions can be resolved."""
    select = exp.select(*[c.copy() for c in columns] or [exp.Literal.number(1)])
    for i, source in enumerate(s.copy() for s in sources):
        joins = [j.pop() for j in list(source.args.get("joins") or [])]
        if i == 0:
            select = select.from_(source, copy=False)
        else:
            select.append("joins", exp.Join(this=source))
        for join in joins:
            select.append("joins", join)
    for arg, value in (("where", where), ("with_", with_)):
        if isinstance(value, exp.Expr):
            select.set(arg, value.copy())
    for col in list(select.find_all(exp.Column)):
        if col.name == "default" and not col.this.quoted and not col.table:
            col.replace(exp.null())
    return select


def _check_dml(stmt: exp.Expr, schema: Schema, mapping: MappingSchema, with_: object) -> list[str]:
    """Write targets against the target table; every read expression through a SELECT."""
    target = stmt.this.this if isinstance(stmt.this, exp.Schema) else stmt.this
    cols, problems = schema[target.name], list[str]()
    ret_cols = stmt.args["returning"].expressions if stmt.args.get("returning") else []
    selects: list[exp.Select] = []

    def targets(nodes: list[exp.Expr], clause: str) -> None:
        names = [c.name for n in nodes for c in n.find_all(exp.Identifier)]
        bad = dict.fromkeys(n for n in names if n not in cols)
        problems.extend(f"unknown column {target.name}.{n} in {clause}" for n in bad)

    if isinstance(stmt, exp.Insert):
        if isinstance(stmt.this, exp.Schema):
            targets(stmt.this.expressions, "INSERT column list")
        source = stmt.expression
        if isinstance(source, exp.Query):
            selects.append(_select([exp.Star()], with_, [source.subquery("s")]))
        elif isinstance(source, exp.Values):
            rows = [row.expressions for row in source.expressions]
            listed = isinstance(stmt.this, exp.Schema)
            width = len(stmt.this.expressions) if listed else len(cols)
            for n in sorted(
                {len(r) for r in rows if len(r) > width or (listed and len(r) < width)}
            ):
                problems.append(f"INSERT row has {n} values for {width} columns of {target.name}")
            selects.append(_select([e for r in rows for e in r], with_, []))
        conflict = stmt.args.get("conflict")
        if conflict:
            targets(conflict.args.get("conflict_keys") or [], "ON CONFLICT target")
            targets([eq.this for eq in conflict.expressions], "ON CONFLICT DO UPDATE SET")
            excluded = exp.alias_(exp.to_table(target.name), "excluded", table=True)
            values = [eq.expression for eq in conflict.expressions]
            selects.append(_select(values, with_, [target, excluded], conflict.args.get("where")))
        predicate = conflict.args.get("index_predicate") if conflict else None
        selects.append(_select(ret_cols, with_, [target], predicate))
    else:
        if isinstance(stmt, exp.Update) and not stmt.expressions:
            return ["syntax error: UPDATE without SET"]
        sources, using = [target], stmt.args.get("using")
        if isinstance(stmt, exp.Update) and stmt.args.get("from_"):
            sources.append(stmt.args["from_"].this)
        sources.extend(using if isinstance(using, list) else [using] if using else [])
        values = []
        if isinstance(stmt, exp.Update):
            targets([eq.this for eq in stmt.expressions], "SET")
            values = [eq.expression for eq in stmt.expressions]
        selects.append(_select([*values, *ret_cols], with_, sources, stmt.args.get("where")))
    for select in selects:
        problems += _check_select(select, schema, mapping)
    return problems


def check_query(sql: str, schema: Schema) -> list[str]:
    """Problems with one query against `schema`; empty when it is fine."""
    try:
        statements = _parse(sql)
    except ValueError as e:
        return [str(e)]
    if len(statements) != 1:
        return [f"expected exactly one statement, found {len(statements)}"]
    stmt = statements[0]
    if not isinstance(stmt, (exp.Query, *_DML)):
        return [f"cannot check a {stmt.key.upper()} statement, only SELECT/INSERT/UPDATE/DELETE"]
    ctes = {cte.alias_or_name for cte in stmt.find_all(exp.CTE)}
    tables = [t for t in stmt.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]
    unknown = dict.fromkeys(t.name for t in tables if t.name not in schema and t.name not in ctes)
    if unknown:
        return [f"unknown table {name}" for name in unknown]
    mapping = MappingSchema(dict[str, object](schema), dialect="postgres")
    with_ = stmt.args.get("with_")
    problems = [] if isinstance(stmt, _DML) else _check_select(stmt, schema, mapping)
    for dml in stmt.find_all(*_DML):  # the statement itself, or data-modifying CTEs
        problems += _check_dml(dml, schema, mapping, dml.args.get("with_") or with_)
    return list(dict.fromkeys(problems))


def _check_tree(root: Path) -> tuple[list[str], int, int]:
    migrations = sorted((root / "migrations" / "sql").glob("*.sql"))
    if not migrations:
        return [f"{root / 'migrations' / 'sql'}: no migrations found"], 0, 0
    try:
        schema = load_schema(migrations)
    except ValueError as e:
        return [str(e)], 0, 0
    problems: list[str] = []
    count = 0
    files = sorted(p for d in QUERY_DIRS if (root / d).is_dir() for p in (root / d).rglob("*.sql"))
    for path in files:
        shown = path.relative_to(root).as_posix()
        try:
            queries = parse_query_file(path.read_text(), shown)
        except ValueError as e:
            problems.append(str(e))
            continue
        count += len(queries)
        for name, sql in queries.items():
            problems.extend(f"{shown}:{name}: {p}" for p in check_query(sql, schema))
    return problems, count, len(schema)


def check_tree(root: Path) -> list[str]:
    """Check every query file of the project at `root` against its migrations."""
    return _check_tree(root)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.sqlcheck", description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=Path("."), help="project root")
    problems, count, tables = _check_tree(parser.parse_args(argv).root)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"sql check: {count} queries OK against {tables} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
