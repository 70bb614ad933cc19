-- 004_ingest_speed: the same rules, checked per statement instead of per row.
--
-- A profile of a first ingest (90,002 observations, 70,000 new CIs) showed
-- two costs out of proportion to the work:
--
-- 1. Foreign keys on the evidence tables. attr_claim (three references) and
--    observation (one) take hundreds of thousands of rows per ingest; each
--    row fired one RI trigger per reference, each a locking index probe:
--    about 80% of the time of inserting claims. The references still hold,
--    but are checked once per statement, set-based, by the triggers below.
--    Rows they point at can no longer disappear behind them: CIs, sources
--    and scan runs are never deleted (refused by triggers, as CIs already
--    were) and their keys never change. The checks read committed rows and
--    the statement's own; a row another transaction has not committed yet
--    is not there (an RI trigger would have waited for it), which no cmdb
--    code path does.
--
-- 2. The attribute check of every new or changed CI ran a regular
--    expression per attribute of every row (the names repeat: a handful of
--    distinct ones per batch). Names are now checked once each, sizes only
--    for documents long enough to hold an attribute over the limit; the
--    exact first offender and message are found only when one exists.

-- ---------------------------------------------------------------------------
-- 1. References checked per statement

ALTER TABLE cmdb.attr_claim DROP CONSTRAINT attr_claim_ci_id_fkey,
                            DROP CONSTRAINT attr_claim_source_fkey,
                            DROP CONSTRAINT attr_claim_run_fkey;
ALTER TABLE cmdb.observation DROP CONSTRAINT observation_run_fkey;

-- The first row of a statement's new claims that points at nothing.
-- (NOT EXISTS with LIMIT 1 over the distinct keys: one index probe per key,
-- never a scan of the referenced table.)
CREATE FUNCTION cmdb.attr_claim_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  v_ci bigint;
  v_source text;
  v_run bigint;
BEGIN
  SELECT k.ci_id INTO v_ci FROM (SELECT DISTINCT ci_id FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.ci c WHERE c.id = k.ci_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'attribute claim for CI %, which does not exist', v_ci USING ERRCODE = '23503';
  END IF;
  SELECT k.source INTO v_source FROM (SELECT DISTINCT source FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.source s WHERE s.name = k.source) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'attribute claim of source "%", which is not registered', v_source USING ERRCODE = '23503';
  END IF;
  SELECT k.run INTO v_run FROM (SELECT DISTINCT run FROM added WHERE run IS NOT NULL) k
   WHERE NOT EXISTS (SELECT FROM cmdb.scan_run r WHERE r.id = k.run) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'attribute claim from scan run %, which does not exist', v_run USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER attr_claim_refs_insert AFTER INSERT ON cmdb.attr_claim
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.attr_claim_refs();
CREATE TRIGGER attr_claim_refs_update AFTER UPDATE ON cmdb.attr_claim
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.attr_claim_refs();

CREATE FUNCTION cmdb.observation_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  v_run bigint;
BEGIN
  SELECT k.run INTO v_run FROM (SELECT DISTINCT run FROM added) k
   WHERE NOT EXISTS (SELECT FROM cmdb.scan_run r WHERE r.id = k.run) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'observation of scan run %, which does not exist', v_run USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER observation_refs AFTER INSERT ON cmdb.observation
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.observation_refs();

-- What the checks rely on: referenced rows stay, with the same keys.
CREATE FUNCTION cmdb.key_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
    RAISE EXCEPTION '% rows are never deleted: claims, observations and history refer to them', TG_TABLE_NAME
      USING ERRCODE = '55000';
  END IF;
  RAISE EXCEPTION 'the key of a % row never changes: claims, observations and history refer to it', TG_TABLE_NAME
    USING ERRCODE = '55000';
END $$;
CREATE TRIGGER source_kept BEFORE DELETE OR TRUNCATE ON cmdb.source
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER scan_run_kept BEFORE DELETE OR TRUNCATE ON cmdb.scan_run
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER source_key_kept BEFORE UPDATE OF name ON cmdb.source
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER scan_run_key_kept BEFORE UPDATE OF id ON cmdb.scan_run
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION cmdb.key_kept();
CREATE TRIGGER ci_key_kept BEFORE UPDATE OF id ON cmdb.ci
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION cmdb.key_kept();

-- Evidence retention by run, not by an index on every observation's time.
DROP INDEX cmdb.observation_at_idx;
CREATE OR REPLACE FUNCTION cmdb.observation_purge() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM cmdb.observation o USING cmdb.scan_run r
   WHERE o.run = r.id
     AND coalesce(r.finished, r.ingested_at)
         < now() - (SELECT value FROM cmdb.setting WHERE name = 'observation_retention')::interval;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- ---------------------------------------------------------------------------
-- 2. The attribute check

-- attribute_problem of 001, inlinable: format() is STABLE, which kept this
-- IMMUTABLE function from being inlined (a function call per attribute).
-- Same messages.
CREATE OR REPLACE FUNCTION cmdb.attribute_problem(p_key text, p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
  WHEN p_key !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$' THEN
    'invalid attribute name "' || p_key
    || '": use letters, digits, _ . : - (at most 64, starting with a letter or _)'
  WHEN octet_length(p_value::text) > 65536 THEN
    'attribute "' || p_key || '" is ' || octet_length(p_value::text)::text || ' bytes long; the limit is 65536'
END;

-- ci_created of 001 with a cheap check in front of the exact one: each
-- distinct attribute name once; a value can only be over the size limit in
-- a document whose text is longer than the limit. (Over the transition
-- table directly: passing its documents as one jsonb[] to a function made
-- the check quadratic. OFFSET 0 keeps the name check above the DISTINCT:
-- pushed below it, it ran once per attribute again.)
CREATE OR REPLACE FUNCTION cmdb.ci_created() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  bad_id bigint;
  msg text;
BEGIN
  IF EXISTS (SELECT FROM (SELECT DISTINCT k FROM added a, jsonb_object_keys(a.attributes) k OFFSET 0) n
              WHERE cmdb.attribute_problem(n.k, 'null') IS NOT NULL)
     OR EXISTS (SELECT FROM added a WHERE octet_length(a.attributes::text) > 65536) THEN
    SELECT min(a.id) INTO bad_id FROM added a, jsonb_each(a.attributes) e
     WHERE cmdb.attribute_problem(e.key, e.value) IS NOT NULL;
    IF bad_id IS NOT NULL THEN
      SELECT min(cmdb.attribute_problem(e.key, e.value)) INTO msg FROM added a, jsonb_each(a.attributes) e
       WHERE a.id = bad_id;
      RAISE EXCEPTION '%', msg USING ERRCODE = '22023';
    END IF;
  END IF;
  SELECT min(a.id) INTO bad_id FROM added a JOIN cmdb.type_required t ON t.type = a.type
   WHERE NOT a.attributes ?& t.required;
  IF bad_id IS NOT NULL THEN
    SELECT format('type %s requires attribute%s: %s', a.type, CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
                  string_agg(r, ', ' ORDER BY r)) INTO msg
      FROM added a JOIN cmdb.type_required t ON t.type = a.type, unnest(t.required) r
     WHERE a.id = bad_id AND NOT a.attributes ? r GROUP BY a.type;
    RAISE EXCEPTION '%', msg USING ERRCODE = '23502';
  END IF;
  INSERT INTO cmdb.history (entity, op, ci_id, new)
  SELECT 'ci', 'create', a.id,
         jsonb_build_object('type', a.type, 'name', a.name, 'description', a.description, 'status', a.status,
                            'criticality', a.criticality, 'owner', a.owner, 'attributes', a.attributes)
    FROM added a ORDER BY a.id;
  INSERT INTO cmdb.ci_version (ci_id, valid, type, name, description, status, criticality, owner, attributes)
  SELECT a.id, tstzrange(now(), NULL), a.type, a.name, a.description, a.status, a.criticality, a.owner, a.attributes
    FROM added a;
  RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- 3. Missing marking: hosts and interfaces too, without nested loops
--
-- 002 marked addresses and services only; a host (or interface) that holds
-- an address in the scope of a complete scan and was not seen since the
-- scan started is missing as well: asset managers ask "which machines are
-- gone", not only which addresses.
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
  svc AS (
    SELECT c.id, c.last_seen FROM cmdb.ci c
      JOIN cmdb.ci_identity i ON i.ci_id = c.id AND i.kind = 'endpoint' AND upper_inf(i.valid)
     WHERE c.type = 'service' AND c.status IN ('live', 'maintenance')
       AND cmdb.port_in(r.scope_ports -> split_part(i.value, '/', 2), split_part(i.value, '/', 3)::integer)
       AND split_part(i.value, '/', 1)::bigint IN (
             SELECT h.source_id FROM cmdb.rel h WHERE h.type = 'provides' AND upper_inf(h.valid))
       AND split_part(i.value, '/', 1)::bigint IN (SELECT host_id FROM holder)),
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
