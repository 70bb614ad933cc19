# A database that holds data at schema 005 migrates to the newest schema
# with nothing lost: 006 turned one claim row per attribute into one per CI
# and source, and every claim must read back the same through the view
# attr_claim (value, time and scan run of each attribute, absent ones too).
. "$(dirname "$0")/lib.sh"
schema=$(cd "$(dirname "$0")/../../schema" && pwd)
name=cli_upgrade
admin="host=$CMDB_TEST_HOME/run user=cmdb dbname=postgres"
psql -X -q "$admin" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\"" >/dev/null
export CMDB_DB="host=$CMDB_TEST_HOME/run user=cmdb dbname=$name"

# 001..005 as `cmdb init` of that release applied them: one transaction each,
# recorded with the file's checksum
for f in "$schema"/00[1-5]_*.sql; do
  base=$(basename "$f" .sql)
  v=$((10#${base%%_*}))
  psql -X -q -1 -v ON_ERROR_STOP=1 "$CMDB_DB" -f "$f" \
    -c "INSERT INTO cmdb.schema_version (version, name, checksum) VALUES ($v, '$base', '$(sha256sum "$f" | cut -d' ' -f1)')" \
    -c "CREATE OR REPLACE FUNCTION cmdb.schema_level() RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT $v'" \
    >/dev/null 2>"$err" || { cat "$err" >&2; bad "applying $base"; finish; exit 1; }
done
expect_eq "$(sql "SELECT max(version) FROM cmdb.schema_version")" 5 "the database is at 005"

# claims as 005 kept them: a manual CI (its claims by the trigger), and a
# scanner that stated attributes at different times and runs, one of them
# absent
sql "SELECT cmdb.source_ensure('discover', 'scanner')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 "$CMDB_DB" >/dev/null 2>"$err" <<'SQL' || { cat "$err" >&2; bad "data at 005"; }
INSERT INTO cmdb.scan_run (scan_id, source) VALUES ('up-1', 'discover'), ('up-2', 'discover');
INSERT INTO cmdb.ci (type, name, description, attributes)
VALUES ('host', 'up-host', 'a host from before', '{"os_family": "linux", "hostname": "up-host"}'),
       ('service', 'up-svc', 'a service from before', '{"port": 25, "banner": "220 mx"}');
INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at, run)
SELECT c.id, a.attr, 'discover', a.value, a.at, r.id
  FROM cmdb.ci c, cmdb.scan_run r,
       (VALUES ('port', '25'::jsonb, timestamptz '2026-11-21 11:00Z', 'up-2'),
               ('product', '"Postfix"', '2026-11-21 11:00Z', 'up-2'),
               ('banner', '"220 mx ESMTP"', '2026-11-21 10:00Z', 'up-1'),
               ('version', NULL, '2026-11-21 10:30Z', 'up-1')) a(attr, value, at, scan)
 WHERE c.name = 'up-svc' AND r.scan_id = a.scan;
INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at, run)
SELECT c.id, 'os_family', 'discover', '"linux"', '2026-11-21 09:00Z', NULL FROM cmdb.ci c WHERE c.name = 'up-host';
SQL
rows="SELECT string_agg(format('%s|%s|%s|%s|%s|%s', c.name, a.attr, a.source, coalesce(a.value::text, 'ABSENT'),
                                cmdb.rfc3339(a.observed_at), coalesce(r.scan_id, '-')), E'\n'
                         ORDER BY c.name, a.attr, a.source)
        FROM cmdb.attr_claim a JOIN cmdb.ci c ON c.id = a.ci_id LEFT JOIN cmdb.scan_run r ON r.id = a.run"
before=$(sql "$rows")
expect_eq "$(sql "SELECT count(*) FROM cmdb.attr_claim")" 9 "nine claims at 005"

expect 0 init
expect_eq "$(sql "SELECT max(version) FROM cmdb.schema_version")" "$(ls "$schema"/0*.sql | wc -l)" "migrated to the newest"
expect_eq "$(sql "$rows")" "$before" "every claim reads back the same"
expect_eq "$(sql "SELECT count(*) FROM cmdb.claim")" 4 "one row per CI and source"
expect_eq "$(sql "SELECT absent::text || ' ' || (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(earlier) k)
  FROM cmdb.claim WHERE source = 'discover' AND ci_id = (SELECT id FROM cmdb.ci WHERE name = 'up-svc')")" \
  "{version} banner,version" "absent and earlier attributes kept"
svc=$(sql "SELECT id FROM cmdb.ci WHERE name = 'up-svc'")
expect 0 ci why "$svc" banner
expect_out '^sql +.*"220 mx" .* yes +highest priority'
expect_out '^discover +20 +"220 mx ESMTP" +2026-11-21T10:00:00'
# and the migrated rows take new statements: a manual edit merges into its row
expect 0 ci set "$svc" -a product=hand
expect_eq "$(sql "SELECT attrs->>'product' FROM cmdb.claim WHERE ci_id = $svc AND source = 'cli'")" hand "manual claim recorded"
expect_eq "$(sql "SELECT string_agg(source, ' ' ORDER BY source) FROM cmdb.claim WHERE ci_id = $svc")" "cli discover sql" \
  "one row per source"
finish
