-- The floor of a first ingest on this server: what merely writing the rows
-- of the leanest CMDB the issue allows costs, with no reconciliation at all.
-- Run by bench/ingest/run.sh after its COPY reference, with
--   psql -v hosts=N -v ports=P -f floor.sql
--
-- For N hosts with P services each (the shape of tests/ingest/gen_obs.py)
-- the leanest model writes, per host:
--   3 + P CIs         host, interface, address, P services (attributes inline,
--                     so provenance costs no row of its own)
--   2 + P identities  the interface's MAC, the address, each service's
--                     endpoint (a host is found through them, as in ours)
--   2 + P relations   has_interface, has_address, P x provides
--   5 + 2P history    one row per created CI and relationship, each with its
--                     own sha256 (no chain: cheaper than any tamper-evident
--                     history)
-- `cmdb ingest` writes all of these (and history rows for the identities
-- besides). The floor writes nothing else: no evidence rows, no versions,
-- no claims, no staging, and no JSON to parse (the values come from
-- generate_series). Each table keeps only the indexes a
-- CMDB cannot answer its questions without: CIs by id and name,
-- identities by value and by CI, relationships both ways, history by CI.
-- Everything here is cheaper than what `cmdb ingest` must do, so its time
-- is a lower bound for any ingest that writes this model into PostgreSQL.
--
-- Two ways to write it, each timed per table (seconds on stdout, one line
-- "floor WAY TABLE ROWS SECONDS" each):
--   insert  INSERT .. SELECT, how a set-based reconciliation in SQL writes
--   copy    COPY FROM STDIN of the same rows (multi-insert), how a client
--           that reconciled by itself would send them
\set ON_ERROR_STOP on
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;
SET search_path = floor;

CREATE TABLE ci (
  id bigint PRIMARY KEY, type text NOT NULL, name text NOT NULL, attributes jsonb NOT NULL,
  first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL);
CREATE INDEX ON ci (name text_pattern_ops);
CREATE TABLE ci_identity (kind text, value text, ci_id bigint NOT NULL, PRIMARY KEY (kind, value));
CREATE INDEX ON ci_identity (ci_id);
CREATE TABLE rel (source_id bigint, type text, target_id bigint, PRIMARY KEY (source_id, type, target_id));
CREATE INDEX ON rel (target_id);
CREATE TABLE history (id bigint PRIMARY KEY, ci_id bigint NOT NULL, op text NOT NULL, data jsonb NOT NULL,
                      hash bytea NOT NULL);
CREATE INDEX ON history (ci_id, id);

-- the rows, computed once (not timed): k = the host's number, CI ids
-- k*16 + 0 (host), 1 (interface), 2 (address), 3.. (services)
CREATE UNLOGGED TABLE src_ci AS
  SELECT k * 16 + j AS id,
         CASE j WHEN 0 THEN 'host' WHEN 1 THEN 'network_interface' WHEN 2 THEN 'ip_address' ELSE 'service' END AS type,
         CASE j WHEN 0 THEN 'host-' || ip WHEN 1 THEN mac WHEN 2 THEN ip ELSE ip || ':tcp/' || (20 + (j - 3) * 7) END AS name,
         CASE j WHEN 0 THEN jsonb_build_object('os_family', 'linux', 'addresses', jsonb_build_array(ip))
                WHEN 1 THEN jsonb_build_object('mac', mac, 'vendor', 'Intel Corporate')
                WHEN 2 THEN jsonb_build_object('address', ip, 'version', 4)
                ELSE jsonb_build_object('proto', 'tcp', 'port', 20 + (j - 3) * 7, 'name', 'ssh', 'product', 'prod' || j,
                                        'version', '1.' || k % 5) END AS attributes,
         timestamptz '2026-11-21 07:00Z' AS seen
    FROM generate_series(0, :hosts - 1) k,
         LATERAL (SELECT format('198.%s.%s.%s', 18 + (k >> 16 & 1), k >> 8 & 255, k & 255) AS ip,
                         format('00:1b:21:%s:%s:%s', lpad(to_hex(k >> 16 & 255), 2, '0'),
                                lpad(to_hex(k >> 8 & 255), 2, '0'), lpad(to_hex(k & 255), 2, '0')) AS mac) a,
         generate_series(0, 2 + :ports) j;
CREATE UNLOGGED TABLE src_ci_identity AS
  SELECT CASE type WHEN 'network_interface' THEN 'mac' WHEN 'ip_address' THEN 'ip' ELSE 'endpoint' END AS kind,
         name AS value, id AS ci_id
    FROM src_ci WHERE type <> 'host';
CREATE UNLOGGED TABLE src_rel AS
  SELECT (id >> 4) * 16 AS source_id,
         CASE WHEN type = 'service' THEN 'provides' ELSE 'has_' || CASE type WHEN 'ip_address' THEN 'address' ELSE 'interface' END END AS type,
         id AS target_id
    FROM src_ci WHERE type <> 'host';
CREATE UNLOGGED TABLE src_history AS
  SELECT row_number() OVER () AS id, ci_id, op, data, sha256(convert_to(data::text, 'UTF8')) AS hash FROM (
    SELECT id AS ci_id, 'create' AS op, jsonb_build_object('type', type, 'name', name, 'attributes', attributes) AS data
      FROM src_ci
    UNION ALL
    SELECT source_id, 'relate', jsonb_build_object('type', type, 'target', target_id) FROM src_rel) h;
VACUUM ANALYZE src_ci, src_ci_identity, src_rel, src_history;
\o /dev/null
CHECKPOINT;
\o

-- insert: each table from its source by INSERT .. SELECT; the hash is
-- computed in the statement, as a history trigger would
CREATE FUNCTION pg_temp.timed(way text, tab text, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
  EXECUTE sql;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN format('floor %s %s %s %s', way, tab, n, round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
END $$;
SELECT pg_temp.timed('insert', 'ci', 'INSERT INTO ci SELECT id, type, name, attributes, seen, seen FROM src_ci');
SELECT pg_temp.timed('insert', 'ci_identity', 'INSERT INTO ci_identity SELECT * FROM src_ci_identity');
SELECT pg_temp.timed('insert', 'rel', 'INSERT INTO rel SELECT * FROM src_rel');
SELECT pg_temp.timed('insert', 'history',
  'INSERT INTO history SELECT id, ci_id, op, data, sha256(convert_to(data::text, ''UTF8'')) FROM src_history');

-- copy: bench/ingest/run.sh writes each source table to a file (untimed),
-- empties the tables and times each \copy FROM of the same rows
TRUNCATE ci, ci_identity, rel, history;
