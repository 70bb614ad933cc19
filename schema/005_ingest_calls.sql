-- 005_ingest_calls: the same rules and records, without a function call or
-- trigger per row where one statement can do the work.
--
-- A CPU profile of a first ingest (perf, 90,002 observations, 70,000 new
-- CIs, after 004) put a quarter of the server's time into per-row calls:
--
-- 1. Foreign keys of ci, ci_identity, rel and ci_version: one RI trigger per
--    row and reference, each an SPI query (13% of the time; 530,000 firings
--    for 70,000 CIs). The references are now checked once per statement,
--    set-based, as 004 did for claims and observations. What they point at
--    cannot go away behind them: CIs, types, statuses and criticalities are
--    never deleted and their keys never change (refused by triggers).
--    ci_version is written only by the ci triggers, from the rows of ci
--    itself, so it needs no check.
--
-- 2. cmdb.history_hash, the generated hash of every history row, was an SQL
--    function PostgreSQL could not inline (its body used convert_to and
--    concat_ws, which are STABLE), so each row paid a full SQL function
--    call: 13 us, 11% of the time. It is rewritten with IMMUTABLE parts only
--    and gives the same bytes for every row (tested against the old
--    expression; every existing chain verifies unchanged). Only in a UTF8
--    database, where convert_to(x, 'UTF8') is x's own bytes; elsewhere the
--    old function stays.
--
-- 3. ingest_batch called cmdb.next_ci_id() (SECURITY DEFINER, a catalog
--    lookup each time) and cmdb.claimed() (PL/pgSQL, one query each) per new
--    CI. Writers may now take ids from the sequence themselves (they could
--    already insert any id with OVERRIDING SYSTEM VALUE), and a new CI's
--    attributes from an aggregate of its own claims in the batch.
--
-- 4. A batch must cost the same in an empty CMDB and in a full one. At
--    1,000,000 observations the planner joined a batch's 10,000 rows to ci
--    and attr_claim by hashing the whole table (3.4 million claims read per
--    batch; statistics lag a bulk load), and JIT-compiled big plans (38 of
--    the statements over 400 ms in one run). Lookups into the CMDB's tables are now
--    written as probes (a scalar subquery, or LATERAL .. LIMIT 1), and
--    ingest_batch runs with jit off and random_page_cost 1.1: what a batch
--    touches is in memory.
--
-- Also here (each explained where it is): 5. identity_add refuses junk
-- identities; 6. sightings as heap-only updates (no index on ci.last_seen,
-- fill factors); 7. a relationship or identity made and ended in one
-- transaction is an end like any other; 8. missing marking leaves the
-- services of a SYN proxy alone (cmdb discover's port scans carry a scope);
-- 9. every ingest applies the evidence retention, and settings are checked;
-- 10. settings and source priorities are recorded in the history.

DO $$
BEGIN
  IF pg_get_serial_sequence('cmdb.ci', 'id') IS DISTINCT FROM 'cmdb.ci_id_seq' THEN
    RAISE EXCEPTION 'expected cmdb.ci_id_seq behind cmdb.ci.id, found %', pg_get_serial_sequence('cmdb.ci', 'id');
  END IF;
END $$;
GRANT USAGE ON SEQUENCE cmdb.ci_id_seq TO cmdb_writer;

-- ---------------------------------------------------------------------------
-- 1. References checked per statement

ALTER TABLE cmdb.ci DROP CONSTRAINT ci_type_fkey,
                    DROP CONSTRAINT ci_status_fkey,
                    DROP CONSTRAINT ci_criticality_fkey;
ALTER TABLE cmdb.ci_version DROP CONSTRAINT ci_version_ci_id_fkey;
ALTER TABLE cmdb.ci_identity DROP CONSTRAINT ci_identity_ci_id_fkey;
ALTER TABLE cmdb.rel DROP CONSTRAINT rel_type_fkey,
                     DROP CONSTRAINT rel_source_id_fkey,
                     DROP CONSTRAINT rel_target_id_fkey;

-- (Each check: NOT EXISTS with LIMIT 1 over the statement's distinct keys,
-- one index probe per key. Identities and relationships cannot be
-- re-pointed (001), so only their inserts are checked.)
CREATE FUNCTION cmdb.ci_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  v text;
BEGIN
  SELECT k.type INTO v FROM (SELECT DISTINCT type FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.ci_type t WHERE t.name = k.type) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'unknown CI type "%" (see: cmdb type list)', v USING ERRCODE = '23503';
  END IF;
  SELECT k.status INTO v FROM (SELECT DISTINCT status FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.ci_status s WHERE s.name = k.status) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'unknown status "%": use planned, live, maintenance, retired or disposed', v
      USING ERRCODE = '23503';
  END IF;
  SELECT k.criticality INTO v FROM (SELECT DISTINCT criticality FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.criticality c WHERE c.name = k.criticality) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'unknown criticality "%": use low, medium, high or critical', v USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ci_refs_insert AFTER INSERT ON cmdb.ci
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_refs();
CREATE TRIGGER ci_refs_update AFTER UPDATE ON cmdb.ci
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_refs();

CREATE FUNCTION cmdb.ci_identity_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  v bigint;
BEGIN
  SELECT k.ci_id INTO v FROM (SELECT DISTINCT ci_id FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.ci c WHERE c.id = k.ci_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'identity for CI %, which does not exist', v USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ci_identity_refs AFTER INSERT ON cmdb.ci_identity
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_identity_refs();

CREATE FUNCTION cmdb.rel_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  v text;
  n bigint;
BEGIN
  SELECT k.type INTO v FROM (SELECT DISTINCT type FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.rel_type t WHERE t.name = k.type) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'unknown relationship type "%" (see: cmdb rel types)', v USING ERRCODE = '23503';
  END IF;
  SELECT k.id INTO n FROM (SELECT source_id AS id FROM added UNION SELECT target_id FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.ci c WHERE c.id = k.id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'relationship with CI %, which does not exist', n USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER rel_refs AFTER INSERT ON cmdb.rel
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.rel_refs();

-- What the checks rely on (key_kept of 004): the referenced rows stay, with
-- the same keys. ci, ci_type: never deleted (001); CI ids and type names
-- never change (004, 001).
CREATE TRIGGER rel_type_kept BEFORE DELETE OR TRUNCATE ON cmdb.rel_type
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER rel_type_key_kept BEFORE UPDATE OF name ON cmdb.rel_type
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER ci_status_kept BEFORE DELETE OR TRUNCATE ON cmdb.ci_status
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER ci_status_key_kept BEFORE UPDATE OF name ON cmdb.ci_status
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER criticality_kept BEFORE DELETE OR TRUNCATE ON cmdb.criticality
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER criticality_key_kept BEFORE UPDATE OF name ON cmdb.criticality
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION cmdb.key_kept();

-- ---------------------------------------------------------------------------
-- 2. The history hash, inlinable, same bytes
--
-- 001's definition, for the record (the bytes it covers never change):
--   sha256(convert_to(concat_ws(E'\x1f', id, epoch microseconds of at, txid,
--     db_user, os_user, source, change_ref, reason, entity, op, ci_id,
--     other_ci_id, rel_id, field, old, new), 'UTF8'))
-- with E'\\N' for each NULL of the nullable fields. Here: || instead of
-- concat_ws (the fields it could skip are NOT NULL columns), the epoch from
-- the interval since 1970 (exact, like extract from the timestamp), and the
-- text's bytes through decode(..., 'escape') with every backslash doubled,
-- which in a UTF8 database are convert_to's bytes.
DO $outer$
BEGIN
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE NOTICE 'database encoding %: cmdb.history_hash stays as it is (slower, same bytes)',
      current_setting('server_encoding');
    RETURN;
  END IF;
  EXECUTE $fn$
CREATE OR REPLACE FUNCTION cmdb.history_hash(p_id bigint, p_at timestamptz, p_txid bigint, p_db_user text,
                                             p_os_user text, p_source text, p_change_ref text, p_reason text,
                                             p_entity text, p_op text, p_ci_id bigint, p_other_ci_id bigint,
                                             p_rel_id bigint, p_field text, p_old jsonb, p_new jsonb)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(decode(replace(
    p_id::text
    || E'\x1f' || ((extract(epoch FROM p_at - '1970-01-01 00:00:00+00'::timestamptz) * 1000000)::bigint)::text
    || E'\x1f' || p_txid::text
    || E'\x1f' || p_db_user
    || E'\x1f' || coalesce(p_os_user, E'\\N')
    || E'\x1f' || p_source
    || E'\x1f' || coalesce(p_change_ref, E'\\N')
    || E'\x1f' || coalesce(p_reason, E'\\N')
    || E'\x1f' || p_entity
    || E'\x1f' || p_op
    || E'\x1f' || coalesce(p_ci_id::text, E'\\N')
    || E'\x1f' || coalesce(p_other_ci_id::text, E'\\N')
    || E'\x1f' || coalesce(p_rel_id::text, E'\\N')
    || E'\x1f' || coalesce(p_field, E'\\N')
    || E'\x1f' || coalesce(p_old::text, E'\\N')
    || E'\x1f' || coalesce(p_new::text, E'\\N'),
  E'\\', E'\\\\'), 'escape'))
$fn$;
END $outer$;

-- ---------------------------------------------------------------------------
-- 3. ingest_batch of 003 without a call per new CI: ids from the sequence,
-- attributes aggregated from each new CI's own claims in w_claim (an index probe
-- per CI, not an aggregate of every claim of the batch per CI type).

CREATE OR REPLACE FUNCTION cmdb.ingest_batch(p_source text)
RETURNS TABLE (created bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE plpgsql SET search_path = cmdb, pg_temp SET work_mem = '64MB' SET jit = off SET random_page_cost = 1.1 AS $$
DECLARE
  prio integer := cmdb.source_ensure(p_source, 'scanner');
  scope text := coalesce((SELECT value FROM cmdb.setting WHERE name = 'ip_scope'), '');
  n_created bigint;
  n_updated bigint;
  n_seen bigint;
  id_rule record;
BEGIN
  PERFORM cmdb.ingest_work_tables();
  PERFORM set_config('cmdb.claims_by_caller', 'on', true);
  PERFORM set_config('cmdb.source', p_source, true);

  -- addresses: every address a host, port or service line names
  INSERT INTO w_ip (ip, at, run)
  SELECT (s.body ->> 'ip')::inet, max(s.at), max(s.run) FROM ingest_stage s
   WHERE s.kind IN ('host', 'service') OR (s.kind = 'port' AND s.body ->> 'state' = 'open')
   GROUP BY 1;
  UPDATE w_ip SET ident = host(ip) || CASE WHEN scope = '' THEN '' ELSE '%' || scope END;
  UPDATE w_ip w SET ci_id = (SELECT i.ci_id FROM cmdb.ci_identity i
                               WHERE i.kind = 'ip' AND i.value = w.ident AND upper_inf(i.valid));
  UPDATE w_ip SET ci_id = nextval('cmdb.ci_id_seq'), is_new = true WHERE ci_id IS NULL;
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT ci_id, 'ip_address', host(ip), 'IP address ' || host(ip) || ' (discovered)',
         jsonb_build_object('family', 'ipv' || family(ip)), at, at
    FROM w_ip WHERE is_new ORDER BY ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value) SELECT ci_id, 'ip', ident FROM w_ip WHERE is_new ORDER BY ci_id;

  -- interfaces: host lines with a usable MAC
  INSERT INTO w_iface (mac, ip, vendor, at, run)
  SELECT DISTINCT ON (m) m, (s.body ->> 'ip')::inet, s.body ->> 'vendor', s.at, s.run
    FROM ingest_stage s, lower(s.body ->> 'mac') m
   WHERE s.kind = 'host' AND NOT cmdb.junk_mac(m)
   ORDER BY m, s.at DESC, s.line DESC;
  UPDATE w_iface w SET ci_id = (SELECT i.ci_id FROM cmdb.ci_identity i
                                  WHERE i.kind = 'mac' AND i.value = w.mac AND upper_inf(i.valid));
  UPDATE w_iface w SET host_id = r.source_id FROM cmdb.rel r
   WHERE r.target_id = w.ci_id AND r.type = 'has_interface' AND upper_inf(r.valid);

  -- hosts: one per address that a host, port or service line names
  INSERT INTO w_host (ip, mac, hostname, given_name, os, reason, at, run)
  SELECT DISTINCT ON (ip) ip, m, lower(g), g, os, reason, at, run FROM (
    SELECT (s.body ->> 'ip')::inet AS ip, lower(s.body ->> 'mac') AS m, rtrim(s.body ->> 'hostname', '.') AS g,
           s.body -> 'os' AS os, s.body ->> 'reason' AS reason, s.at, s.run, 0 AS pref, s.line
      FROM ingest_stage s WHERE s.kind = 'host'
    UNION ALL
    SELECT w.ip, NULL, NULL, NULL, NULL, w.at, w.run, 1, NULL FROM w_ip w) x
  ORDER BY ip, pref, at DESC, line DESC;  -- 005: the later of two lines at one time
  UPDATE w_host SET mac = NULL WHERE cmdb.junk_mac(mac);
  -- 003: the host rules in their order (cmdb type rules host); each step
  -- only fills hosts an earlier rule left unmatched. A host observation
  -- carries a MAC, a name and an address: rules of other kinds (serial,
  -- uuid, ...) match inventory records, below. One iteration per rule, not
  -- per row.
  FOR id_rule IN SELECT t.kind, t.options FROM cmdb.type_ident_rule t WHERE t.type = 'host' ORDER BY t.position LOOP
    CASE id_rule.kind
    WHEN 'mac' THEN
      -- by the interface's MAC; with 'universal', universally administered MACs only
      UPDATE w_host h SET ci_id = f.host_id FROM w_iface f
       WHERE h.ci_id IS NULL AND h.mac = f.mac AND f.host_id IS NOT NULL
         AND NOT ('universal' = ANY (id_rule.options) AND cmdb.local_mac(f.mac));
    WHEN 'fqdn' THEN
      -- by name (never a junk one: localhost, ...)
      UPDATE w_host h SET ci_id = i.ci_id FROM cmdb.ci_identity i
       WHERE h.ci_id IS NULL AND h.hostname IS NOT NULL AND i.kind = 'fqdn' AND i.value = h.hostname
         AND upper_inf(i.valid) AND NOT cmdb.junk_identity('fqdn', h.hostname);
    WHEN 'ip' THEN
      -- c. by an address it holds, through its interface or directly; not for
      --    new universal MACs (new hardware that took over an address)
      UPDATE w_host h SET ci_id = x.host_id FROM (
        SELECT DISTINCT ON (w.ip) w.ip, coalesce(hi.source_id, ha.source_id) AS host_id
          FROM w_ip w
          LEFT JOIN cmdb.rel ia ON ia.target_id = w.ci_id AND ia.type = 'has_address' AND upper_inf(ia.valid)
          LEFT JOIN cmdb.rel hi ON hi.target_id = ia.source_id AND hi.type = 'has_interface' AND upper_inf(hi.valid)
          LEFT JOIN cmdb.ci src ON src.id = ia.source_id
          LEFT JOIN cmdb.rel ha ON ha.target_id = w.ci_id AND ha.type = 'has_address' AND upper_inf(ha.valid)
                               AND ha.source_id IN (SELECT id FROM cmdb.ci WHERE type = 'host')
         WHERE NOT w.is_new
         ORDER BY w.ip, ia.id DESC) x
       WHERE h.ci_id IS NULL AND h.ip = x.ip AND x.host_id IS NOT NULL
         AND (h.mac IS NULL OR cmdb.local_mac(h.mac) OR h.mac IN (SELECT mac FROM w_iface WHERE ci_id IS NOT NULL));
    ELSE
      NULL;
    END CASE;
  END LOOP;
  UPDATE w_host SET ci_id = nextval('cmdb.ci_id_seq'), is_new = true WHERE ci_id IS NULL;
  UPDATE w_host SET name = coalesce(nullif(given_name, ''), host(ip)) WHERE is_new;
  INSERT INTO w_claim (ci_id, attr, value, at, run)
  SELECT h.ci_id, a.k, a.v, h.at, h.run FROM w_host h
   CROSS JOIN LATERAL (VALUES ('hostname', to_jsonb(h.given_name)), ('os_family', h.os -> 'family'),
                              ('os_guess', h.os -> 'guess'), ('os_confidence', h.os -> 'confidence')) a(k, v)
   WHERE a.v IS NOT NULL AND jsonb_typeof(a.v) <> 'null';
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT h.ci_id, 'host', h.name, 'host at ' || host(h.ip) || ' (discovered)', coalesce(a.attrs, '{}'), h.at, h.at
    FROM w_host h LEFT JOIN LATERAL (SELECT jsonb_object_agg(c.attr, c.value) AS attrs FROM w_claim c WHERE c.ci_id = h.ci_id) a ON true
   WHERE h.is_new ORDER BY h.ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value)
  SELECT DISTINCT ON (h.hostname) h.ci_id, 'fqdn', h.hostname FROM w_host h
   WHERE h.is_new AND h.hostname IS NOT NULL AND h.hostname ~ '^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?$'
     AND NOT cmdb.junk_identity('fqdn', h.hostname)  -- 003
     AND (SELECT i.id FROM cmdb.ci_identity i WHERE i.kind = 'fqdn' AND i.value = h.hostname AND upper_inf(i.valid)
           LIMIT 1) IS NULL
   ORDER BY h.hostname, h.ci_id;

  -- new interfaces, named after their host
  UPDATE w_iface f SET ci_id = nextval('cmdb.ci_id_seq'), is_new = true WHERE ci_id IS NULL;
  UPDATE w_iface f SET host_id = h.ci_id FROM w_host h WHERE f.host_id IS NULL AND h.mac = f.mac;
  INSERT INTO w_claim (ci_id, attr, value, at, run)
  SELECT f.ci_id, a.k, a.v, f.at, f.run FROM w_iface f
   CROSS JOIN LATERAL (VALUES ('mac', to_jsonb(f.mac)), ('vendor', to_jsonb(f.vendor)),
                              ('mac_local', to_jsonb(cmdb.local_mac(f.mac)))) a(k, v)
   WHERE a.v IS NOT NULL AND jsonb_typeof(a.v) <> 'null';
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT f.ci_id, 'network_interface',
         coalesce((SELECT c.name FROM cmdb.ci c WHERE c.id = f.host_id), host(f.ip)) || '/' || f.mac,
         'network interface ' || f.mac || ' (discovered)', coalesce(a.attrs, '{}'), f.at, f.at
    FROM w_iface f
    LEFT JOIN LATERAL (SELECT jsonb_object_agg(c.attr, c.value) AS attrs FROM w_claim c WHERE c.ci_id = f.ci_id) a ON true
   WHERE f.is_new ORDER BY f.ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value) SELECT ci_id, 'mac', mac FROM w_iface WHERE is_new ORDER BY ci_id;

  -- relationships: end the ones reality contradicts, then add the missing
  UPDATE cmdb.rel r SET valid = tstzrange(lower(r.valid), greatest(lower(r.valid), now()))
    FROM w_iface f
   WHERE r.type = 'has_interface' AND r.target_id = f.ci_id AND upper_inf(r.valid) AND r.source_id <> f.host_id;
  INSERT INTO cmdb.rel (type, source_id, target_id)
  SELECT DISTINCT 'has_interface', f.host_id, f.ci_id FROM w_iface f
   WHERE f.host_id IS NOT NULL AND (f.is_new OR (
     SELECT r.id FROM cmdb.rel r WHERE r.type = 'has_interface' AND r.source_id = f.host_id AND r.target_id = f.ci_id
        AND upper_inf(r.valid) LIMIT 1) IS NULL);
  -- an address belongs to the interface it was seen on (or the host when no MAC)
  -- an address seen without its MAC in this batch (port and service lines
  -- only: the host line was in another batch) stays on the interface of
  -- the same host that holds it; only another host takes it over
  INSERT INTO w_addr_owner
  SELECT DISTINCT ON (w.ci_id) w.ci_id,
         coalesce(f.ci_id,
                  CASE WHEN h.mac IS NULL THEN
                    (SELECT ia.source_id FROM cmdb.rel ia
                       JOIN cmdb.rel hi ON hi.target_id = ia.source_id AND hi.type = 'has_interface'
                                       AND upper_inf(hi.valid) AND hi.source_id = h.ci_id
                      WHERE ia.target_id = w.ci_id AND ia.type = 'has_address' AND upper_inf(ia.valid)
                      ORDER BY ia.id DESC LIMIT 1)
                  END,
                  h.ci_id)
    FROM w_host h JOIN w_ip w ON w.ip = h.ip LEFT JOIN w_iface f ON f.mac = h.mac
   ORDER BY w.ci_id;
  UPDATE cmdb.rel r SET valid = tstzrange(lower(r.valid), greatest(lower(r.valid), now()))
    FROM w_addr_owner o
   WHERE r.type = 'has_address' AND r.target_id = o.ip_ci AND upper_inf(r.valid) AND r.source_id <> o.owner;
  INSERT INTO cmdb.rel (type, source_id, target_id)
  SELECT 'has_address', o.owner, o.ip_ci FROM w_addr_owner o
   WHERE (SELECT r.id FROM cmdb.rel r WHERE r.type = 'has_address' AND r.source_id = o.owner
            AND r.target_id = o.ip_ci AND upper_inf(r.valid) LIMIT 1) IS NULL;

  -- services: open ports, with what service detection found
  INSERT INTO w_svc (ip, proto, port, body, at, run)
  SELECT DISTINCT ON (ip, proto, port) ip, proto, port, body, at, run FROM (
    SELECT (s.body ->> 'ip')::inet AS ip, s.body ->> 'proto' AS proto, (s.body ->> 'port')::integer AS port,
           CASE WHEN s.kind = 'service' THEN s.body END AS body, s.at, s.run, s.kind
      FROM ingest_stage s
     WHERE s.kind = 'service' OR (s.kind = 'port' AND s.body ->> 'state' = 'open')) x
  ORDER BY ip, proto, port, (kind = 'service') DESC, at DESC;
  UPDATE w_svc s SET host_id = h.ci_id, ident = h.ci_id || '/' || s.proto || '/' || s.port
    FROM w_host h WHERE h.ip = s.ip;
  -- 003: a host seen at two addresses (one that was merged, say) has one
  -- service per port: keep one sighting per endpoint, the one with service
  -- detection, then the latest (two rows would claim one CI twice)
  DELETE FROM w_svc s USING w_svc t
   WHERE s.ident = t.ident AND (t.body IS NOT NULL, t.at, t.ip) > (s.body IS NOT NULL, s.at, s.ip);
  UPDATE w_svc s SET ci_id = (SELECT i.ci_id FROM cmdb.ci_identity i
                                WHERE i.kind = 'endpoint' AND i.value = s.ident AND upper_inf(i.valid));
  UPDATE w_svc SET ci_id = nextval('cmdb.ci_id_seq'), is_new = true WHERE ci_id IS NULL;
  INSERT INTO w_claim (ci_id, attr, value, at, run)
  SELECT s.ci_id, a.k, a.v, s.at, s.run FROM w_svc s
   CROSS JOIN LATERAL (VALUES ('protocol', to_jsonb(s.proto)), ('port', to_jsonb(s.port)), ('state', '"open"'::jsonb),
                              ('service', s.body -> 'service'), ('product', s.body -> 'product'),
                              ('version', s.body -> 'version'), ('extra', s.body -> 'extra'),
                              ('banner', s.body -> 'banner'), ('tls', s.body -> 'tls'),
                              ('service_confidence', s.body -> 'confidence')) a(k, v)
   WHERE a.v IS NOT NULL AND jsonb_typeof(a.v) <> 'null';
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT s.ci_id, 'service', c.name || ':' || s.port || '/' || s.proto,
         coalesce(s.body ->> 'service', 'unidentified') || ' on ' || host(s.ip) || ' port ' || s.port || '/'
           || s.proto || ' (discovered)', coalesce(a.attrs, '{}'), s.at, s.at
    FROM w_svc s CROSS JOIN LATERAL (SELECT c.name FROM cmdb.ci c WHERE c.id = s.host_id LIMIT 1) c
    LEFT JOIN LATERAL (SELECT jsonb_object_agg(c.attr, c.value) AS attrs FROM w_claim c WHERE c.ci_id = s.ci_id) a ON true
   WHERE s.is_new ORDER BY s.ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value) SELECT ci_id, 'endpoint', ident FROM w_svc WHERE is_new ORDER BY ci_id;
  INSERT INTO cmdb.rel (type, source_id, target_id)
  SELECT 'provides', s.host_id, s.ci_id FROM w_svc s
   WHERE s.is_new OR (SELECT r.id FROM cmdb.rel r WHERE r.type = 'provides' AND r.source_id = s.host_id
                        AND r.target_id = s.ci_id AND upper_inf(r.valid) LIMIT 1) IS NULL;

  -- inventories: CIs of any type, found through the identities given (in
  -- order), else through a unique name within the type, else created
  INSERT INTO w_ci (line, type, name, description, identities, attributes, at, run)
  SELECT s.line, s.body ->> 'type', s.body ->> 'name', s.body ->> 'description',
         coalesce(s.body -> 'identities', '[]'), coalesce(s.body -> 'attributes', '{}'), s.at, s.run
    FROM ingest_stage s WHERE s.kind = 'ci';
  INSERT INTO w_report (action, line, ci_type, name, detail)
  SELECT 'reject', w.line, w.type, w.name, format('unknown CI type "%s" (see: cmdb type list)', w.type)
    FROM w_ci w WHERE NOT EXISTS (SELECT FROM cmdb.ci_type t WHERE t.name = w.type);
  DELETE FROM w_ci w WHERE NOT EXISTS (SELECT FROM cmdb.ci_type t WHERE t.name = w.type);
  INSERT INTO w_ci_ident
  SELECT w.line, e.ord, e.v ->> 'kind', cmdb.identity_or_null(e.v ->> 'kind', e.v ->> 'value')
    FROM w_ci w, jsonb_array_elements(w.identities) WITH ORDINALITY e(v, ord);
  DELETE FROM w_ci_ident WHERE value IS NULL;
  -- 003: the identities that may match, ranked by the rules of the record's
  -- type ('*' ranks the kinds of your own without a rule, in the order given)
  IF to_regclass('pg_temp.w_ci_match') IS NULL THEN
    CREATE TEMP TABLE w_ci_match (line bigint, rank bigint, kind text, value text) ON COMMIT DELETE ROWS;
  END IF;
  INSERT INTO w_ci_match (line, rank, kind, value)
  SELECT x.line, coalesce(k.position, star.position)::bigint * 1000000 + x.ord, x.kind, x.value
    FROM w_ci_ident x JOIN w_ci w ON w.line = x.line
    LEFT JOIN cmdb.type_ident_rule k ON k.type = w.type AND k.kind = x.kind
    LEFT JOIN cmdb.type_ident_rule star ON star.type = w.type AND star.kind = '*'
                                          AND NOT cmdb.builtin_identity_kind(x.kind)
   WHERE coalesce(k.position, star.position) IS NOT NULL
     AND NOT (x.kind = 'mac' AND 'universal' = ANY (coalesce(k.options, '{}')) AND cmdb.local_mac(x.value));
  UPDATE w_ci w SET ci_id = m.ci_id FROM (
    SELECT DISTINCT ON (x.line) x.line, i.ci_id FROM w_ci_match x
      JOIN cmdb.ci_identity i ON i.kind = x.kind AND i.value = x.value AND upper_inf(i.valid)
     ORDER BY x.line, x.rank) m
   WHERE m.line = w.line;
  -- an identity that another record of this batch tied to a CI names that CI
  UPDATE w_ci w SET ci_id = m.ci_id FROM (
    SELECT DISTINCT ON (x.line) x.line, o.ci_id FROM w_ci_match x
      JOIN w_ci_match y ON y.kind = x.kind AND y.value = x.value AND y.line <> x.line
      JOIN w_ci o ON o.line = y.line AND o.ci_id IS NOT NULL
     ORDER BY x.line, x.rank) m
   WHERE w.line = m.line AND w.ci_id IS NULL;
  UPDATE w_ci w SET ci_id = m.id FROM (
    SELECT c.type, c.name, min(c.id) AS id FROM cmdb.ci c JOIN w_ci w2 ON w2.type = c.type AND w2.name = c.name
     WHERE c.status NOT IN ('disposed', 'merged') GROUP BY c.type, c.name HAVING count(*) = 1) m  -- 003
   WHERE w.ci_id IS NULL AND m.type = w.type AND m.name = w.name
     AND NOT EXISTS (SELECT FROM w_ci_match x WHERE x.line = w.line);  -- 003
  -- a record whose identity belongs to a CI of another type (not a subtype)
  -- says something contradictory: report it, apply nothing of it
  INSERT INTO w_report (action, line, ci_id, ci_type, name, detail)
  SELECT 'conflict', w.line, w.ci_id, w.type, w.name,
         format('its identities name CI %s (%s), a %s, not a %s: not applied', c.id, c.name, c.type, w.type)
    FROM w_ci w JOIN cmdb.ci c ON c.id = w.ci_id
   WHERE c.type <> w.type AND NOT EXISTS (
     WITH RECURSIVE up AS (SELECT c.type AS t UNION SELECT t2.parent FROM cmdb.ci_type t2 JOIN up ON t2.name = up.t
                            WHERE t2.parent IS NOT NULL)
     SELECT FROM up WHERE up.t = w.type);
  DELETE FROM w_ci w USING w_report r WHERE r.action = 'conflict' AND r.line = w.line;
  -- rows of one batch that name the same new CI (same first identity, or same
  -- type and name without identities) become one CI
  UPDATE w_ci w SET ci_id = f.id, is_new = true FROM (
    SELECT w3.line, first_value(w3.line) OVER (PARTITION BY coalesce(k.kind || '=' || k.value, w3.type || '/' || w3.name)
                                               ORDER BY w3.line) AS lead_line,
           nextval('cmdb.ci_id_seq') AS id
      FROM w_ci w3 LEFT JOIN LATERAL (SELECT x.kind, x.value FROM w_ci_match x WHERE x.line = w3.line
                                      ORDER BY x.rank LIMIT 1) k ON true
     WHERE w3.ci_id IS NULL) f
   WHERE w.line = f.line AND f.line = f.lead_line;
  UPDATE w_ci w SET ci_id = lead.ci_id FROM w_ci lead, (
    SELECT w3.line, first_value(w3.line) OVER (PARTITION BY coalesce(k.kind || '=' || k.value, w3.type || '/' || w3.name)
                                               ORDER BY w3.line) AS lead_line
      FROM w_ci w3 LEFT JOIN LATERAL (SELECT x.kind, x.value FROM w_ci_match x WHERE x.line = w3.line
                                      ORDER BY x.rank LIMIT 1) k ON true
     WHERE w3.ci_id IS NULL) f
   WHERE w.line = f.line AND lead.line = f.lead_line AND w.ci_id IS NULL;
  INSERT INTO w_claim (ci_id, attr, value, at, run)
  SELECT DISTINCT ON (w.ci_id, e.key) w.ci_id, e.key, e.value, w.at, w.run
    FROM w_ci w, jsonb_each(w.attributes) e ORDER BY w.ci_id, e.key, w.line DESC
  ON CONFLICT (ci_id, attr) DO NOTHING;
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT w.ci_id, w.type, w.name, coalesce(nullif(btrim(w.description), ''), w.type || ' ' || w.name || ' (imported from ' || p_source || ')'),
         coalesce(a.attrs, '{}'), w.at, w.at
    FROM w_ci w LEFT JOIN LATERAL (SELECT jsonb_object_agg(c.attr, c.value) AS attrs FROM w_claim c WHERE c.ci_id = w.ci_id) a ON true
   WHERE w.is_new ORDER BY w.ci_id;
  -- identities the CI lacks; one held by another CI is a conflict, reported
  INSERT INTO w_report (action, line, ci_id, ci_type, name, detail)
  SELECT 'conflict', x.line, w.ci_id, w.type, w.name,
         format('identity %s=%s is held by CI %s, not by this one', x.kind, x.value, i.ci_id)
    FROM w_ci_ident x JOIN w_ci w ON w.line = x.line
    JOIN cmdb.ci_identity i ON i.kind = x.kind AND i.value = x.value AND upper_inf(i.valid) AND i.ci_id <> w.ci_id;
  INSERT INTO w_report (action, line, ci_id, ci_type, name, detail)
  SELECT 'conflict', x.line, w.ci_id, w.type, w.name,
         format('identity %s=%s is also given for CI %s (line %s): kept there', x.kind, x.value, f.ci_id, f.line)
    FROM w_ci_ident x JOIN w_ci w ON w.line = x.line
    JOIN (SELECT DISTINCT ON (xi.kind, xi.value) xi.kind, xi.value, xi.line, wi.ci_id
            FROM w_ci_ident xi JOIN w_ci wi ON wi.line = xi.line ORDER BY xi.kind, xi.value, xi.line) f
      ON f.kind = x.kind AND f.value = x.value AND f.ci_id <> w.ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value)
  SELECT DISTINCT ON (x.kind, x.value) w.ci_id, x.kind, x.value
    FROM w_ci_ident x JOIN w_ci w ON w.line = x.line
   WHERE (SELECT i.id FROM cmdb.ci_identity i WHERE i.kind = x.kind AND i.value = x.value AND upper_inf(i.valid)
           LIMIT 1) IS NULL
   ORDER BY x.kind, x.value, x.line;

  -- the attributes whose winning claim this batch can change: a new or
  -- changed value of this source, or one another source also claims (among
  -- equal priorities the latest wins, so a mere re-observation can change
  -- the winner). An uncontested, unchanged claim leaves the CI as it is.
  IF to_regclass('pg_temp.w_touched') IS NULL THEN
    CREATE TEMP TABLE w_touched (ci_id bigint, attr text, PRIMARY KEY (ci_id, attr)) ON COMMIT DELETE ROWS;
  END IF;
  -- sightings of CIs that existed before this batch (new ones were inserted
  -- with their attributes and times)
  INSERT INTO w_seen
  SELECT ci_id, max(at) FROM (SELECT ci_id, at FROM w_ip WHERE NOT is_new UNION ALL SELECT ci_id, at FROM w_iface WHERE NOT is_new
                              UNION ALL SELECT ci_id, at FROM w_host WHERE NOT is_new
                              UNION ALL SELECT ci_id, at FROM w_svc WHERE NOT is_new
                              UNION ALL SELECT ci_id, at FROM w_ci WHERE NOT is_new) x
   GROUP BY ci_id;

  -- what this source says about the attributes of what it saw. The claims
  -- of new CIs are new rows (005: a plain insert, no conflict to look for).
  INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at, run)
  SELECT ci_id, attr, p_source, value, at, run FROM w_claim w
   WHERE NOT EXISTS (SELECT FROM w_seen s WHERE s.ci_id = w.ci_id);
  -- A claim on an older CI is compared with this source's last one, one
  -- index probe each (005: LATERAL .. LIMIT 1 and scalar subqueries keep it
  -- a probe; a hash join, or EXISTS, which the planner may turn into a hashed
  -- subplan, would read every claim in the CMDB per batch). Its attribute is touched
  -- when the value is new or another source claims it too (among equal
  -- priorities the latest wins, so a mere re-observation can change the
  -- winner); the claim is rewritten only when value, run or time moved.
  -- (Whether another source claims anything of a CI is asked once per CI;
  -- only those CIs are asked per attribute.)
  WITH shared AS MATERIALIZED (
    SELECT s.ci_id FROM w_seen s
     WHERE (SELECT c.ci_id FROM cmdb.attr_claim c WHERE c.ci_id = s.ci_id AND c.source <> p_source LIMIT 1) IS NOT NULL),
  cmp AS MATERIALIZED (
    SELECT w.ci_id, w.attr, w.value, w.at, w.run,
           p.found IS NULL OR p.value IS DISTINCT FROM w.value AS changed,
           p.found IS NULL OR p.value IS DISTINCT FROM w.value OR p.run IS DISTINCT FROM w.run
             OR p.observed_at < w.at AS moved,
           w.ci_id IN (SELECT ci_id FROM shared)
             AND (SELECT c.ci_id FROM cmdb.attr_claim c WHERE c.ci_id = w.ci_id AND c.attr = w.attr
                     AND c.source <> p_source LIMIT 1) IS NOT NULL AS contested
      FROM (SELECT * FROM w_claim WHERE ci_id IN (SELECT ci_id FROM w_seen) OFFSET 0) w
      LEFT JOIN LATERAL (SELECT true AS found, c.value, c.run, c.observed_at FROM cmdb.attr_claim c
                          WHERE c.ci_id = w.ci_id AND c.attr = w.attr AND c.source = p_source LIMIT 1) p ON true),
  touched AS (
    INSERT INTO w_touched SELECT ci_id, attr FROM cmp WHERE changed OR contested)
  INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at, run)
  SELECT ci_id, attr, p_source, value, at, run FROM cmp WHERE moved
  ON CONFLICT (ci_id, attr, source) DO UPDATE
    SET value = excluded.value, observed_at = greatest(cmdb.attr_claim.observed_at, excluded.observed_at),
        run = excluded.run;

  -- apply: each touched attribute takes the value of its best claim; a CI is
  -- updated only when an attribute changes or it was seen later than before
  WITH touched AS (SELECT t.ci_id, t.attr FROM w_touched t JOIN w_seen s ON s.ci_id = t.ci_id),
  best AS (
    SELECT DISTINCT ON (c.ci_id, c.attr) c.ci_id, c.attr, c.value
      FROM cmdb.attr_claim c JOIN touched t ON t.ci_id = c.ci_id AND t.attr = c.attr
      JOIN cmdb.source s ON s.name = c.source
     ORDER BY c.ci_id, c.attr, s.priority DESC, c.observed_at DESC),
  wanted AS (
    SELECT ci_id, jsonb_object_agg(attr, value) FILTER (WHERE value IS NOT NULL) AS set_attrs,
           array_agg(attr) FILTER (WHERE value IS NULL) AS unset_attrs
      FROM best GROUP BY ci_id),
  target AS (
    -- (005: seen again, a CI loses its missing mark and when it was made;
    -- history keeps both)
    SELECT c.id, ((c.attributes || coalesce(w.set_attrs, '{}')) - coalesce(w.unset_attrs, '{}'))
                 - 'missing' - 'missing_since' AS attrs,
           greatest(c.last_seen, s.at) AS last_seen, coalesce(c.first_seen, s.at) AS first_seen
      FROM w_seen s
      CROSS JOIN LATERAL (SELECT c.id, c.attributes, c.last_seen, c.first_seen FROM cmdb.ci c
                           WHERE c.id = s.ci_id LIMIT 1) c
      LEFT JOIN wanted w ON w.ci_id = s.ci_id),
  changed AS (
    UPDATE cmdb.ci c SET attributes = t.attrs, last_seen = t.last_seen, first_seen = t.first_seen
      FROM target t
     WHERE c.id = t.id AND (c.attributes IS DISTINCT FROM t.attrs OR c.last_seen IS DISTINCT FROM t.last_seen
                            OR c.first_seen IS DISTINCT FROM t.first_seen)
    RETURNING c.id, c.attributes IS DISTINCT FROM t.attrs AS attr_changed)
  SELECT count(*) FILTER (WHERE attr_changed) INTO n_updated FROM changed;

  INSERT INTO w_report (action, ci_id, ci_type, name)
  SELECT 'create', c.id, c.type, c.name FROM cmdb.ci c
   WHERE c.id IN (SELECT ci_id FROM w_ip WHERE is_new UNION ALL SELECT ci_id FROM w_iface WHERE is_new
                  UNION ALL SELECT ci_id FROM w_host WHERE is_new UNION ALL SELECT ci_id FROM w_svc WHERE is_new
                  UNION ALL SELECT ci_id FROM w_ci WHERE is_new);
  SELECT count(*) INTO n_created FROM w_report WHERE action = 'create';
  SELECT count(*) + n_created INTO n_seen FROM w_seen;

  UPDATE cmdb.scan_run r SET observations = r.observations + x.n FROM (
    SELECT run, count(*) AS n FROM ingest_stage GROUP BY run) x WHERE r.id = x.run;
  UPDATE cmdb.scan_run r SET created = r.created + n_created, updated = r.updated + n_updated,
         unchanged = r.unchanged + (n_seen - n_created - n_updated)
   WHERE r.id = (SELECT max(run) FROM ingest_stage);

  created := n_created;
  updated := n_updated;
  unchanged := n_seen - n_created - n_updated;
  SELECT count(*) INTO rejected FROM w_report WHERE action = 'reject';
  PERFORM set_config('cmdb.claims_by_caller', '', true);
  RETURN NEXT;
END $$;

-- ---------------------------------------------------------------------------
-- 5. identity_add of 003, refusing junk: `cmdb ci add -i serial=0` stored an
-- identity that reconciliation never matches (it skips junk values), so the
-- record claimed an identity it could never be found by.

CREATE OR REPLACE FUNCTION cmdb.identity_add(p_ci bigint, p_kind text, p_value text) RETURNS bigint
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  v text := cmdb.identity_normalize(p_kind, p_value);
  holder record;
  new_id bigint;
BEGIN
  IF cmdb.junk_identity(p_kind, v) THEN
    RAISE EXCEPTION '%=% is a placeholder, not an identity: values like 0, "Default string", "To be filled by O.E.M.", all-zero or broadcast MACs and localhost identify nothing',
      p_kind, v USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT FROM cmdb.ci WHERE id = p_ci AND status = 'merged') THEN
    RAISE EXCEPTION 'CI % was merged into CI %: its record is closed', p_ci,
      (SELECT attributes ->> 'merged_into' FROM cmdb.ci WHERE id = p_ci) USING ERRCODE = '55000';
  END IF;
  SELECT c.id, c.name INTO holder FROM cmdb.ci_identity i JOIN cmdb.ci c ON c.id = i.ci_id
   WHERE i.kind = p_kind AND i.value = v AND upper_inf(i.valid);
  IF FOUND THEN
    IF holder.id = p_ci THEN
      RAISE EXCEPTION 'CI % already has identity %=%', p_ci, p_kind, v USING ERRCODE = '23505';
    END IF;
    RAISE EXCEPTION 'identity %=% is already held by CI % (%)', p_kind, v, holder.id, holder.name
      USING ERRCODE = '23505';
  END IF;
  BEGIN
    INSERT INTO cmdb.ci_identity (ci_id, kind, value) VALUES (p_ci, p_kind, v) RETURNING id INTO new_id;
  EXCEPTION WHEN unique_violation THEN
    SELECT c.id, c.name INTO holder FROM cmdb.ci_identity i JOIN cmdb.ci c ON c.id = i.ci_id
     WHERE i.kind = p_kind AND i.value = v AND upper_inf(i.valid);
    RAISE EXCEPTION 'identity %=% is already held by CI % (%)', p_kind, v, holder.id, holder.name
      USING ERRCODE = '23505';
  END;
  RETURN new_id;
END $$;

-- ---------------------------------------------------------------------------
-- 6. Sightings as HOT updates
--
-- A re-scan that finds everything as it was still moves every CI's
-- last_seen and every claim's time and run. With last_seen indexed and full
-- pages, each of those updates wrote a new entry into every index of its
-- table (five for ci, a GIN among them). Without the index on last_seen and
-- with room left in each page, they are heap-only (HOT) updates: a re-scan
-- of 90,002 observations took 13.7 s, now 10.7 s. `ci list --stale` reads
-- the CIs in scope instead of the index (0.25-0.36 s for 777,777 CIs in
-- bench/ingest/run.sh).
-- The fill factors apply to pages written from now on.
DROP INDEX cmdb.ci_last_seen_idx;
ALTER TABLE cmdb.ci SET (fillfactor = 80);
ALTER TABLE cmdb.attr_claim SET (fillfactor = 70);

-- ---------------------------------------------------------------------------
-- 7. A relationship or identity made and ended in one transaction
--
-- Ending one sets valid = [lower, greatest(lower, now())): made in the same
-- transaction, that is [now, now), an empty range, whose lower bound reads
-- NULL, and 001's triggers took the NULL for a moved start and refused the
-- change ("cannot be re-pointed"; "cannot be edited"). An empty range that
-- ends a row begun at now() is an end like any other.

CREATE OR REPLACE FUNCTION cmdb.rel_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  bad record;
BEGIN
  SELECT min(o.id) FILTER (WHERE NOT upper_inf(o.valid)) AS ended,
         min(o.id) FILTER (WHERE (n.type, n.source_id, n.target_id,
                                  CASE WHEN isempty(n.valid) AND lower(o.valid) = now() THEN lower(o.valid)
                                       ELSE lower(n.valid) END)
                                 IS DISTINCT FROM (o.type, o.source_id, o.target_id, lower(o.valid))) AS edited
    INTO bad FROM old_rows o JOIN new_rows n ON n.id = o.id;
  IF bad.ended IS NOT NULL THEN
    RAISE EXCEPTION 'relationship % has ended and cannot change', bad.ended USING ERRCODE = '55000';
  ELSIF bad.edited IS NOT NULL THEN
    RAISE EXCEPTION 'a relationship cannot be re-pointed: end it and add a new one' USING ERRCODE = '55000';
  END IF;
  INSERT INTO cmdb.history (entity, op, ci_id, other_ci_id, rel_id, field, old, new)
  SELECT 'rel', CASE WHEN upper_inf(n.valid) THEN 'update' ELSE 'unrelate' END,
         n.source_id, n.target_id, n.id,
         CASE WHEN upper_inf(n.valid) THEN 'attributes' ELSE n.type END,
         CASE WHEN upper_inf(n.valid) THEN o.attributes
              ELSE jsonb_build_object('type', n.type, 'source', n.source_id, 'target', n.target_id,
                                      'attributes', o.attributes) END,
         CASE WHEN upper_inf(n.valid) THEN n.attributes END
    FROM old_rows o JOIN new_rows n ON n.id = o.id
   WHERE NOT upper_inf(n.valid) OR n.attributes IS DISTINCT FROM o.attributes
   ORDER BY n.id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION cmdb.ci_identity_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  bad record;
BEGIN
  SELECT min(o.id) FILTER (WHERE NOT upper_inf(o.valid)) AS ended,
         min(o.id) FILTER (WHERE (n.ci_id, n.kind, n.value,
                                  CASE WHEN isempty(n.valid) AND lower(o.valid) = now() THEN lower(o.valid)
                                       ELSE lower(n.valid) END)
                                 IS DISTINCT FROM (o.ci_id, o.kind, o.value, lower(o.valid))) AS edited
    INTO bad FROM old_rows o JOIN new_rows n ON n.id = o.id;
  IF bad.ended IS NOT NULL THEN
    RAISE EXCEPTION 'identity % has ended and cannot change', bad.ended USING ERRCODE = '55000';
  ELSIF bad.edited IS NOT NULL THEN
    RAISE EXCEPTION 'an identity cannot be edited: end it and add a new one' USING ERRCODE = '55000';
  END IF;
  INSERT INTO cmdb.history (entity, op, ci_id, field, old)
  SELECT 'identity', 'identity_remove', n.ci_id, n.kind, to_jsonb(n.value)
    FROM new_rows n WHERE NOT upper_inf(n.valid) ORDER BY n.id;
  RETURN NULL;
END $$;

-- unused since the ingest above
DROP FUNCTION cmdb.next_ci_id();
DROP FUNCTION cmdb.claimed(bigint);

-- ---------------------------------------------------------------------------
-- 8. Missing marking and SYN proxies
--
-- cmdb discover's port scans carry a scope and scope_ports (until now only
-- -sn did), so a complete port scan marks the services in scope it did not
-- see as missing. A host the scan found to be a SYN proxy (its host line
-- says "syn_proxy": true: it answered SYN-ACK on nearly every port) has
-- none of its ports written, on purpose (docs/observations.md): the scan
-- could not tell its open ports from the proxy's answers, which is not
-- evidence that its services are gone. So the services of a host that
-- holds an address with such a host line in this run are left alone; the
-- host, its interface and its address were seen and are not missing
-- either. Otherwise scan_run_end of 004, unchanged.
--
-- scan_run_end runs right after the batches that filled the tables it
-- reads, before autovacuum has analyzed them: with row estimates of 1 the
-- planner chose nested loops over the whole scope, and marking the missing
-- of a 90,000-observation scan took 40 s instead of 0.7 s. The query is
-- set-based over everything in scope; hash joins are always right for it.
CREATE OR REPLACE FUNCTION cmdb.scan_run_end(p_run bigint, p_body jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = cmdb, pg_temp SET enable_nestloop = off AS $$
DECLARE
  r cmdb.scan_run;
  n bigint := 0;
BEGIN
  UPDATE cmdb.scan_run SET finished = (p_body ->> 'at')::timestamptz,
         complete = coalesce((p_body ->> 'complete')::boolean, false)
   WHERE id = p_run RETURNING * INTO r;
  IF NOT r.complete OR r.scope IS NULL OR r.started IS NULL THEN
    RETURN 0;
  END IF;
  PERFORM set_config('cmdb.claims_by_caller', 'on', true);
  PERFORM set_config('cmdb.source', r.source, true);
  WITH addr AS (
    SELECT c.id, split_part(i.value, '%', 1)::inet AS ip, c.last_seen
      FROM cmdb.ci c JOIN cmdb.ci_identity i ON i.ci_id = c.id AND i.kind = 'ip' AND upper_inf(i.valid)
     WHERE c.type = 'ip_address' AND c.status IN ('live', 'maintenance')
       AND split_part(i.value, '%', 1)::inet <<= ANY (r.scope)),
  -- who holds each address in scope: its interface and that interface's
  -- host, or a host directly
  holder AS (
    SELECT a.id AS addr_id, ri.target_id AS iface_id, coalesce(ri.source_id, ra.source_id) AS host_id
      FROM addr a JOIN cmdb.rel ra ON ra.target_id = a.id AND ra.type = 'has_address' AND upper_inf(ra.valid)
      LEFT JOIN cmdb.rel ri ON ri.target_id = ra.source_id AND ri.type = 'has_interface' AND upper_inf(ri.valid)),
  -- hosts this run found to be SYN proxies (the address as text: the
  -- observation is the scanner's, compared, never cast)
  proxy AS (
    SELECT h.host_id FROM holder h JOIN addr a ON a.id = h.addr_id
     WHERE host(a.ip) IN (SELECT o.body ->> 'ip' FROM cmdb.observation o
                           WHERE o.run = p_run AND o.kind = 'host' AND o.body -> 'syn_proxy' = 'true')),
  svc AS (
    SELECT c.id, c.last_seen FROM cmdb.ci c
      JOIN cmdb.ci_identity i ON i.ci_id = c.id AND i.kind = 'endpoint' AND upper_inf(i.valid)
     WHERE c.type = 'service' AND c.status IN ('live', 'maintenance')
       AND cmdb.port_in(r.scope_ports -> split_part(i.value, '/', 2), split_part(i.value, '/', 3)::integer)
       AND split_part(i.value, '/', 1)::bigint IN (
             SELECT h.source_id FROM cmdb.rel h WHERE h.type = 'provides' AND upper_inf(h.valid))
       AND split_part(i.value, '/', 1)::bigint IN (SELECT host_id FROM holder)
       AND split_part(i.value, '/', 1)::bigint NOT IN (SELECT host_id FROM proxy)),
  gone_host AS (
    SELECT c.id FROM cmdb.ci c
     WHERE c.type = 'host' AND c.status IN ('live', 'maintenance')
       AND c.id IN (SELECT host_id FROM holder)
       AND (c.last_seen IS NULL OR c.last_seen < r.started)),
  -- an interface only with its host: a scan from beyond a router sees the
  -- host without its MAC, and the interface is not gone for that
  gone_iface AS (
    SELECT c.id FROM cmdb.ci c JOIN holder h ON h.iface_id = c.id
     WHERE c.type = 'network_interface' AND c.status IN ('live', 'maintenance')
       AND h.host_id IN (SELECT id FROM gone_host)
       AND (c.last_seen IS NULL OR c.last_seen < r.started)),
  gone AS (
    SELECT id FROM addr WHERE last_seen IS NULL OR last_seen < r.started
    UNION
    SELECT id FROM svc WHERE last_seen IS NULL OR last_seen < r.started
    UNION
    SELECT id FROM gone_host
    UNION
    SELECT id FROM gone_iface),
  marked AS (
    UPDATE cmdb.ci c SET attributes = c.attributes || jsonb_build_object('missing', true, 'missing_since', r.finished)
      FROM gone g WHERE c.id = g.id AND NOT c.attributes ? 'missing'
    RETURNING c.id)
  SELECT count(*) INTO n FROM marked;
  UPDATE cmdb.scan_run SET missing = n WHERE id = p_run;
  PERFORM set_config('cmdb.claims_by_caller', '', true);
  RETURN n;
END $$;

-- ---------------------------------------------------------------------------
-- 9. Evidence retention that runs, and settings that are checked
--
-- observation_purge existed (004) but nothing called it, so raw
-- observations were kept forever whatever observation_retention said; and
-- a setting could be given any text. Every ingest (cmdb ingest, scan,
-- import) now ends with the purge. Retention counts from when a run was
-- ingested, not from when its scan happened: an nmap file from last year,
-- imported today, keeps its evidence for the retention too.

CREATE OR REPLACE FUNCTION cmdb.observation_purge() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  -- the expired runs first (a few rows), then their observations by the
  -- primary key's prefix: never a scan of all the evidence after an ingest
  DELETE FROM cmdb.observation
   WHERE run = ANY (ARRAY(SELECT r.id FROM cmdb.scan_run r
                           WHERE r.ingested_at < now() - (SELECT value FROM cmdb.setting
                                                           WHERE name = 'observation_retention')::interval));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

CREATE FUNCTION cmdb.setting_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  d interval;
  n bigint;
BEGIN
  IF NEW.name <> OLD.name THEN
    RAISE EXCEPTION 'a setting cannot be renamed' USING ERRCODE = '55000';
  END IF;
  NEW.value := btrim(NEW.value);
  CASE NEW.name
  WHEN 'observation_retention' THEN
    BEGIN
      d := NEW.value::interval;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow
                   OR invalid_text_representation THEN
      RAISE EXCEPTION 'observation_retention must be a duration such as "90 days" or "12 hours", not "%"',
        NEW.value USING ERRCODE = '22023';
    END;
    IF d <= interval '0' THEN
      RAISE EXCEPTION 'observation_retention must be longer than 0, not "%"', NEW.value USING ERRCODE = '22023';
    END IF;
  WHEN 'ip_scope' THEN
    IF NEW.value !~ '^([A-Za-z0-9_.-]{1,64})?$' THEN
      RAISE EXCEPTION 'ip_scope must be empty or up to 64 letters, digits, _ . -, not "%"', NEW.value
        USING ERRCODE = '22023';
    END IF;
    -- the scope is part of every ip identity: changed afterwards, the next
    -- scan would match no address it recorded before and duplicate them all
    SELECT count(*) INTO n FROM cmdb.ci_identity WHERE kind = 'ip' AND upper_inf(valid);
    IF NEW.value IS DISTINCT FROM OLD.value AND n > 0 THEN
      RAISE EXCEPTION 'ip_scope can only change before the first address is recorded (% ip identities use "%")',
        n, OLD.value USING ERRCODE = '55000';
    END IF;
  ELSE
    NULL;
  END CASE;
  RETURN NEW;
END $$;
CREATE TRIGGER setting_check BEFORE UPDATE ON cmdb.setting FOR EACH ROW EXECUTE FUNCTION cmdb.setting_check();

-- ---------------------------------------------------------------------------
-- 10. Settings and source priorities in the history
--
-- Both decide what the CMDB records (how long evidence stays, which
-- source's value wins), so an auditor must be able to trace who changed
-- them and when, as with types and identification rules.

ALTER TABLE cmdb.history DROP CONSTRAINT history_entity_check,
  ADD CONSTRAINT history_entity_check
      CHECK (entity IN ('ci', 'identity', 'rel', 'ci_type', 'rel_type', 'setting', 'source'));

CREATE FUNCTION cmdb.config_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
BEGIN
  PERFORM cmdb.history_append(TG_TABLE_NAME, lower(TG_OP), NULL, NULL, NULL, NEW.name,
    CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END, to_jsonb(NEW));
  RETURN NULL;
END $$;
CREATE TRIGGER setting_record AFTER UPDATE ON cmdb.setting
  FOR EACH ROW WHEN (OLD.value IS DISTINCT FROM NEW.value) EXECUTE FUNCTION cmdb.config_record();
CREATE TRIGGER source_record_insert AFTER INSERT ON cmdb.source
  FOR EACH ROW EXECUTE FUNCTION cmdb.config_record();
CREATE TRIGGER source_record_update AFTER UPDATE ON cmdb.source
  FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION cmdb.config_record();
