-- 003_rules_dup: identification rules per CI type, kept in the database and
-- editable (`cmdb type rules`), reconciliation that follows them, suspected
-- duplicates (`cmdb dup list`) and their merge (`cmdb dup merge`).
--
-- Identification rules. A type's rules are an ordered list of identity
-- kinds, most trusted first: an observation or inventory record is matched
-- to the CI found through its first usable identity in rule order. A type
-- without a list of its own follows its parent's (user types inherit); a
-- type with neither uses the default list. The built-in kinds (serial,
-- uuid, mac, fqdn, ip, endpoint) match only through a rule of their own, so
-- removing one stops matching on it; the rule '*' stands for the kinds of
-- your own (asset tags, ...) without a rule, in the order a record gives
-- them. Junk values (placeholders, all-zero and broadcast values) never
-- match, whatever the rules say: they are filtered before the rules apply.
--
-- Merge. A suspected duplicate is closed with the status `merged` and an
-- attribute `merged_into`; its identities, relationships and attribute
-- claims move to the CI kept. Nothing is deleted and every step is in
-- history, so both CIs' histories stay readable.

SET LOCAL ROLE cmdb_owner;

-- ---------------------------------------------------------------------------
-- Identification rules

-- The types that have a list of their own (possibly empty); the others
-- inherit theirs.
CREATE TABLE cmdb.ident_rule_list (
  type text PRIMARY KEY REFERENCES cmdb.ci_type(name)
);

CREATE TABLE cmdb.ident_rule (
  type     text NOT NULL REFERENCES cmdb.ident_rule_list(type),
  position integer NOT NULL CONSTRAINT ident_rule_position CHECK (position BETWEEN 1 AND 64),
  kind     text NOT NULL CONSTRAINT ident_rule_kind_format CHECK (kind = '*' OR kind ~ '^[a-z][a-z0-9_]{0,31}$'),
  -- 'universal' (mac only): locally administered MACs (virtual machines,
  -- containers, randomized Wi-Fi) are not evidence of the same hardware
  options  text[] NOT NULL DEFAULT '{}'
           CONSTRAINT ident_rule_options CHECK (options = '{}' OR (kind = 'mac' AND options = '{universal}')),
  PRIMARY KEY (type, position),
  CONSTRAINT ident_rule_kind_once UNIQUE (type, kind)
);

-- Rules change only through cmdb.ident_rules_set, which records every change
-- in history; anything else (a stray psql UPDATE) is refused.
CREATE FUNCTION cmdb.ident_rule_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('cmdb.rules_edit', true), '') <> 'on' THEN
    RAISE EXCEPTION 'identification rules change only through cmdb.ident_rules_set (cmdb type rules), which records them in history'
      USING ERRCODE = '55000';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ident_rule_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON cmdb.ident_rule
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ident_rule_guard();
CREATE TRIGGER ident_rule_list_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON cmdb.ident_rule_list
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ident_rule_guard();

-- The kinds identity_normalize knows, plus serial and endpoint: they match
-- only through a rule naming them.
CREATE FUNCTION cmdb.builtin_identity_kind(p_kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_kind IN ('serial', 'uuid', 'mac', 'fqdn', 'ip', 'endpoint');

-- The built-in lists: what 002's reconciliation did, written down.
--   host              serial, machine uuid, an interface's universally
--                     administered MAC, fqdn, an address it holds (ip)
--   network_interface mac;  ip_address ip (address%scope);  service endpoint
--   the others, and   every built-in kind (002 matched inventory records by
--   types without     whatever identities they gave)
--   any list
-- Each ends with '*' so that identities of kinds of your own (asset tags)
-- still match after the built-in ones, as they did before.
CREATE FUNCTION cmdb.ident_rules_default(p_type text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_type
  WHEN 'host' THEN ARRAY['serial', 'uuid', 'mac:universal', 'fqdn', 'ip', '*']
  WHEN 'network_interface' THEN ARRAY['mac', '*']
  WHEN 'ip_address' THEN ARRAY['ip', '*']
  WHEN 'service' THEN ARRAY['endpoint', '*']
  ELSE ARRAY['serial', 'uuid', 'mac', 'fqdn', 'ip', 'endpoint', '*'] END;

SELECT set_config('cmdb.rules_edit', 'on', true);
INSERT INTO cmdb.ident_rule_list SELECT name FROM cmdb.ci_type WHERE builtin ORDER BY name;
INSERT INTO cmdb.ident_rule (type, position, kind, options)
SELECT t.name, r.n, split_part(r.spec, ':', 1),
       CASE WHEN r.spec LIKE '%:%' THEN ARRAY[split_part(r.spec, ':', 2)] ELSE '{}' END
  FROM cmdb.ci_type t, unnest(cmdb.ident_rules_default(t.name)) WITH ORDINALITY r(spec, n)
 WHERE t.builtin;
SELECT set_config('cmdb.rules_edit', '', true);

-- The rules in force for every type: its own list, else its nearest
-- ancestor's, else the default list. defined_by names the type whose list
-- applies (NULL: the default).
CREATE VIEW cmdb.type_ident_rule AS
WITH RECURSIVE up AS (
  SELECT t.name AS type, t.name AS anc, 0 AS depth FROM cmdb.ci_type t
  UNION ALL
  SELECT up.type, p.parent, up.depth + 1 FROM up JOIN cmdb.ci_type p ON p.name = up.anc WHERE p.parent IS NOT NULL
), owner AS (
  SELECT DISTINCT ON (up.type) up.type, up.anc FROM up JOIN cmdb.ident_rule_list l ON l.type = up.anc
   ORDER BY up.type, up.depth
)
SELECT o.type, o.anc AS defined_by, r.position, r.kind, r.options
  FROM owner o JOIN cmdb.ident_rule r ON r.type = o.anc
UNION ALL
SELECT t.name, NULL, d.n::integer, d.spec, '{}'::text[]
  FROM cmdb.ci_type t, unnest(cmdb.ident_rules_default(NULL)) WITH ORDINALITY d(spec, n)
 WHERE NOT EXISTS (SELECT FROM owner o WHERE o.type = t.name);

-- What a rule matches, for people.
CREATE FUNCTION cmdb.ident_rule_meaning(p_kind text, p_options text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_kind
  WHEN '*' THEN 'identities of kinds of your own without a rule, in the order given'
  WHEN 'mac' THEN 'MAC address (of the CI or, for discovered hosts, of an interface)'
                  || CASE WHEN 'universal' = ANY (p_options) THEN '; universally administered only' ELSE '' END
  WHEN 'ip' THEN 'IP address within the ip_scope setting (for discovered hosts: an address they hold)'
  WHEN 'fqdn' THEN 'host name'
  WHEN 'serial' THEN 'serial number'
  WHEN 'uuid' THEN 'machine UUID'
  WHEN 'endpoint' THEN 'providing host id/protocol/port'
  ELSE 'identity ' || p_kind END;

-- A type's rules as text specs ('mac:universal'), for history and editing.
CREATE FUNCTION cmdb.ident_rules_of(p_type text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = cmdb, pg_temp
RETURN (SELECT jsonb_build_object(
          'defined_by', min(r.defined_by),
          'rules', coalesce(jsonb_agg(r.kind || coalesce(':' || array_to_string(nullif(r.options, '{}'), ','), '')
                                      ORDER BY r.position) FILTER (WHERE r.kind IS NOT NULL), '[]'))
          FROM cmdb.ci_type t LEFT JOIN cmdb.type_ident_rule r ON r.type = t.name
         WHERE t.name = p_type);

-- Replaces a type's list with p_rules (most trusted first: 'serial',
-- 'mac:universal', '*', ...); NULL resets it: a built-in type gets its
-- built-in list back, a type of your own follows its parent again. The
-- change is one history row (entity ci_type, op rules) with the rules before
-- and after.
CREATE FUNCTION cmdb.ident_rules_set(p_type text, p_rules text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  t cmdb.ci_type;
  before jsonb;
  after jsonb;
  spec text;
  k text;
  opt text;
  kinds text[] := '{}';
  norm text[] := '{}';
  need text;
BEGIN
  -- one editor per type at a time
  SELECT * INTO t FROM cmdb.ci_type WHERE name = p_type FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown CI type "%" (see: cmdb type list)', p_type USING ERRCODE = '22023';
  END IF;
  IF p_rules IS NULL AND t.builtin THEN
    p_rules := cmdb.ident_rules_default(p_type);
  END IF;
  IF cardinality(p_rules) > 64 THEN
    RAISE EXCEPTION 'at most 64 identification rules per type' USING ERRCODE = '22023';
  END IF;
  FOREACH spec IN ARRAY coalesce(p_rules, '{}') LOOP
    spec := btrim(spec);
    k := btrim(split_part(spec, ':', 1));
    opt := nullif(btrim(substr(spec, strpos(spec || ':', ':') + 1)), '');
    IF spec IS NULL OR (k <> '*' AND k !~ '^[a-z][a-z0-9_]{0,31}$') THEN
      RAISE EXCEPTION 'invalid identity kind "%": use lower-case letters, digits and _ (or * for kinds of your own)',
        coalesce(spec, '') USING ERRCODE = '22023';
    END IF;
    IF opt IS NOT NULL AND NOT (k = 'mac' AND opt = 'universal') THEN
      RAISE EXCEPTION 'unknown option "%" for kind %: the only option is mac:universal', opt, k USING ERRCODE = '22023';
    END IF;
    IF k = ANY (kinds) THEN
      RAISE EXCEPTION 'kind % is listed twice', k USING ERRCODE = '22023';
    END IF;
    kinds := kinds || k;
    norm := norm || (k || coalesce(':' || opt, ''));
  END LOOP;
  IF p_rules IS NOT NULL THEN
    p_rules := norm;
  END IF;
  -- reconciliation creates addresses, interfaces and services with these
  -- identities; without the rule every scan would create them again
  need := CASE p_type WHEN 'ip_address' THEN 'ip' WHEN 'network_interface' THEN 'mac'
                      WHEN 'service' THEN 'endpoint' END;
  IF need IS NOT NULL AND NOT (need = ANY (kinds) AND need = ANY (coalesce(p_rules, '{}'))) THEN
    RAISE EXCEPTION 'type % must keep the rule % (without options): reconciliation creates its CIs with that identity and would create them again on every scan',
      p_type, need USING ERRCODE = '22023';
  END IF;

  before := cmdb.ident_rules_of(p_type);
  PERFORM set_config('cmdb.rules_edit', 'on', true);
  DELETE FROM cmdb.ident_rule WHERE type = p_type;
  DELETE FROM cmdb.ident_rule_list WHERE type = p_type;
  IF p_rules IS NOT NULL THEN
    INSERT INTO cmdb.ident_rule_list VALUES (p_type);
    INSERT INTO cmdb.ident_rule (type, position, kind, options)
    SELECT p_type, r.n, split_part(r.spec, ':', 1),
           CASE WHEN r.spec LIKE '%:%' THEN ARRAY[split_part(r.spec, ':', 2)] ELSE '{}' END
      FROM unnest(p_rules) WITH ORDINALITY r(spec, n);
  END IF;
  PERFORM set_config('cmdb.rules_edit', '', true);
  after := cmdb.ident_rules_of(p_type);
  IF before IS DISTINCT FROM after THEN
    PERFORM cmdb.history_append('ci_type', 'rules', NULL, NULL, NULL, 'ident_rules',
                                jsonb_build_object('type', p_type) || before, jsonb_build_object('type', p_type) || after);
  END IF;
END $$;

-- One edit of a type's rules in force: 'add' p_spec at position p_at (NULL:
-- last), 'rm' the rule of kind p_spec, 'move' it to position p_at. Editing
-- an inherited list gives the type a list of its own.
CREATE FUNCTION cmdb.ident_rules_edit(p_type text, p_op text, p_spec text, p_at integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  cur text[];
  k text := btrim(split_part(coalesce(p_spec, ''), ':', 1));
  i integer;
  n integer;
BEGIN
  PERFORM FROM cmdb.ci_type WHERE name = p_type FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown CI type "%" (see: cmdb type list)', p_type USING ERRCODE = '22023';
  END IF;
  cur := ARRAY(SELECT jsonb_array_elements_text(cmdb.ident_rules_of(p_type) -> 'rules'));
  n := cardinality(cur);
  SELECT x.n INTO i FROM unnest(cur) WITH ORDINALITY x(spec, n) WHERE split_part(x.spec, ':', 1) = k;
  CASE p_op
  WHEN 'add' THEN
    IF i IS NOT NULL THEN
      RAISE EXCEPTION 'type % already has a rule for % (position %): move it, or remove it first', p_type, k, i
        USING ERRCODE = '22023';
    END IF;
    IF p_at IS NOT NULL AND (p_at < 1 OR p_at > n + 1) THEN
      RAISE EXCEPTION 'position % is outside 1..%', p_at, n + 1 USING ERRCODE = '22023';
    END IF;
    p_at := coalesce(p_at, n + 1);
    cur := cur[1:p_at - 1] || p_spec || cur[p_at:n];
  WHEN 'rm' THEN
    IF i IS NULL THEN
      RAISE EXCEPTION 'type % has no rule for %', p_type, k USING ERRCODE = '22023';
    END IF;
    cur := cur[1:i - 1] || cur[i + 1:n];
  WHEN 'move' THEN
    IF i IS NULL THEN
      RAISE EXCEPTION 'type % has no rule for %', p_type, k USING ERRCODE = '22023';
    END IF;
    IF p_at IS NULL OR p_at < 1 OR p_at > n THEN
      RAISE EXCEPTION 'position % is outside 1..%', coalesce(p_at::text, 'NULL'), n USING ERRCODE = '22023';
    END IF;
    p_spec := cur[i];
    cur := cur[1:i - 1] || cur[i + 1:n];
    cur := cur[1:p_at - 1] || p_spec || cur[p_at:n - 1];
  ELSE
    RAISE EXCEPTION 'unknown rule edit "%": add, rm or move', p_op USING ERRCODE = '22023';
  END CASE;
  PERFORM cmdb.ident_rules_set(p_type, cur);
END $$;

-- Junk identifiers identify nothing. 002's list, with more of what firmware
-- and installers leave behind, well-known placeholder UUIDs, and loopback
-- host names that every machine answers to.
CREATE OR REPLACE FUNCTION cmdb.junk_identity(p_kind text, p_value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_value IS NULL OR btrim(p_value) = ''
  OR lower(btrim(p_value)) IN ('0', 'none', 'n/a', 'na', 'null', 'unknown', 'default string',
                               'to be filled by o.e.m.', 'to be filled by oem', 'system serial number',
                               'not specified', 'not applicable', '123456789', 'chassis serial number',
                               'base board serial number', '0123456789', 'xxxxxxxxxx',
                               'to be filled by o.e.m', 'o.e.m.', 'oem', 'default', 'not available',
                               'not defined', 'not present', 'none specified', 'undefined', 'invalid',
                               'empty', 'serial', 'system product name', 'system uuid', 'no asset tag',
                               'no asset information', 'asset tag', '1234567890', 'type1productconfigid',
                               'sku', 'tbd', 'unknown unknown', '-')
  OR btrim(p_value) ~ '^[0\-:.]+$' OR lower(btrim(p_value)) ~ '^f+([-:]f+)*$'
  OR (p_kind = 'uuid' AND lower(btrim(p_value)) IN ('03000200-0400-0500-0006-000700080009',
                                                    '00020003-0004-0005-0006-000700080009'))
  OR (p_kind = 'fqdn' AND lower(rtrim(btrim(p_value), '.')) IN ('localhost', 'localhost.localdomain',
                                                               'localhost6', 'localhost6.localdomain6',
                                                               'ip6-localhost', 'ip6-loopback'))
  OR (p_kind = 'mac' AND cmdb.junk_mac(lower(p_value)));

-- ---------------------------------------------------------------------------
-- The merged status: terminal, like disposed, and reached only by a merge.

INSERT INTO cmdb.ci_status VALUES
  ('merged', 6, 'merged into another CI (attribute merged_into); the record is closed');
INSERT INTO cmdb.ci_status_transition VALUES
  ('planned', 'merged'), ('live', 'merged'), ('maintenance', 'merged'), ('retired', 'merged');
ALTER TABLE cmdb.ci ADD CONSTRAINT ci_merged_names_target
  CHECK (status <> 'merged' OR attributes ? 'merged_into');

-- 001's ci_stamp, which also closes merged records and keeps the status for
-- cmdb.ci_merge (it sets cmdb.merging).
CREATE OR REPLACE FUNCTION cmdb.ci_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.created_at := OLD.created_at;
  IF cmdb.ci_recorded_change(OLD, NEW) THEN
    IF OLD.status = 'merged' THEN
      RAISE EXCEPTION 'CI % (%) was merged into CI %: its record is closed', OLD.id, OLD.name,
        OLD.attributes ->> 'merged_into' USING ERRCODE = '55000';
    END IF;
    IF NEW.status = 'merged' AND coalesce(current_setting('cmdb.merging', true), '') <> 'on' THEN
      RAISE EXCEPTION 'CI % cannot be set to merged by hand: merge it into another (cmdb dup merge)', OLD.id
        USING ERRCODE = '55000';
    END IF;
    NEW.updated_at := now();
  ELSE
    NEW.updated_at := OLD.updated_at;
  END IF;
  RETURN NEW;
END $$;

-- 001's identity_add and rel_add, refusing merged CIs as they refuse
-- disposed ones: a merged CI that got an identity or a relationship back
-- would be found again by reconciliation.
CREATE OR REPLACE FUNCTION cmdb.identity_add(p_ci bigint, p_kind text, p_value text) RETURNS bigint
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  v text := cmdb.identity_normalize(p_kind, p_value);
  holder record;
  new_id bigint;
BEGIN
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

CREATE OR REPLACE FUNCTION cmdb.rel_add(p_source bigint, p_type text, p_target bigint, p_attrs jsonb)
RETURNS bigint LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  src cmdb.ci := cmdb.ci_require(p_source);
  dst cmdb.ci := cmdb.ci_require(p_target);
  new_id bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM cmdb.rel_type WHERE name = p_type) THEN
    RAISE EXCEPTION 'unknown relationship type "%" (one of: %)', p_type,
      (SELECT string_agg(name, ', ' ORDER BY name) FROM cmdb.rel_type) USING ERRCODE = '22023';
  END IF;
  IF p_source = p_target THEN
    RAISE EXCEPTION 'a CI cannot be related to itself (CI %)', p_source USING ERRCODE = '22023';
  END IF;
  IF src.status IN ('disposed', 'merged') OR dst.status IN ('disposed', 'merged') THEN
    RAISE EXCEPTION 'CI % is % and takes no new relationships',
      CASE WHEN src.status IN ('disposed', 'merged') THEN src.id ELSE dst.id END,
      CASE WHEN src.status IN ('disposed', 'merged') THEN src.status ELSE dst.status END USING ERRCODE = '55000';
  END IF;
  BEGIN
    INSERT INTO cmdb.rel (type, source_id, target_id, attributes)
    VALUES (p_type, p_source, p_target, coalesce(p_attrs, '{}')) RETURNING id INTO new_id;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'CI % (%) already % CI % (%)', src.id, src.name,
      (SELECT forward_label FROM cmdb.rel_type WHERE name = p_type), dst.id, dst.name USING ERRCODE = '23505';
  END;
  RETURN new_id;
END $$;

-- ---------------------------------------------------------------------------
-- Reconciliation that follows the rules: 002's cmdb.ingest_batch, changed
-- only where it identifies (each change is marked "003:"):
--   - hosts seen by discovery are matched by the host rules in their order
--     (mac, fqdn and ip are the kinds a host observation carries; a missing
--     rule is not used; mac without 'universal' also trusts local MACs), and
--     junk host names neither match nor become identities;
--   - inventory records ('ci' lines) match through the identities their
--     type's rules allow, in rule order ('*': kinds of your own without a
--     rule, in the order given); identities the rules do not use are still
--     recorded on the CI;
--   - merged CIs, like disposed ones, are never found by name;
--   - a host seen at two addresses in one batch gets one service per port.
-- Addresses, interfaces and services keep their one identity each (ip, mac,
-- endpoint): cmdb.ident_rules_set refuses lists without it.
CREATE OR REPLACE FUNCTION cmdb.ingest_batch(p_source text)
RETURNS TABLE (created bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
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
  UPDATE w_ip w SET ci_id = i.ci_id FROM cmdb.ci_identity i
   WHERE i.kind = 'ip' AND i.value = w.ident AND upper_inf(i.valid);
  UPDATE w_ip SET ci_id = cmdb.next_ci_id(), is_new = true WHERE ci_id IS NULL;
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
   ORDER BY m, s.at DESC;
  UPDATE w_iface w SET ci_id = i.ci_id FROM cmdb.ci_identity i
   WHERE i.kind = 'mac' AND i.value = w.mac AND upper_inf(i.valid);
  UPDATE w_iface w SET host_id = r.source_id FROM cmdb.rel r
   WHERE r.target_id = w.ci_id AND r.type = 'has_interface' AND upper_inf(r.valid);

  -- hosts: one per address that a host, port or service line names
  INSERT INTO w_host (ip, mac, hostname, given_name, os, reason, at, run)
  SELECT DISTINCT ON (ip) ip, m, lower(g), g, os, reason, at, run FROM (
    SELECT (s.body ->> 'ip')::inet AS ip, lower(s.body ->> 'mac') AS m, rtrim(s.body ->> 'hostname', '.') AS g,
           s.body -> 'os' AS os, s.body ->> 'reason' AS reason, s.at, s.run, 0 AS pref
      FROM ingest_stage s WHERE s.kind = 'host'
    UNION ALL
    SELECT w.ip, NULL, NULL, NULL, NULL, w.at, w.run, 1 FROM w_ip w) x
  ORDER BY ip, pref, at DESC;
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
  UPDATE w_host SET ci_id = cmdb.next_ci_id(), is_new = true WHERE ci_id IS NULL;
  UPDATE w_host SET name = coalesce(nullif(given_name, ''), host(ip)) WHERE is_new;
  INSERT INTO w_claim (ci_id, attr, value, at, run)
  SELECT h.ci_id, a.k, a.v, h.at, h.run FROM w_host h
   CROSS JOIN LATERAL (VALUES ('hostname', to_jsonb(h.given_name)), ('os_family', h.os -> 'family'),
                              ('os_guess', h.os -> 'guess'), ('os_confidence', h.os -> 'confidence')) a(k, v)
   WHERE a.v IS NOT NULL AND jsonb_typeof(a.v) <> 'null';
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT ci_id, 'host', name, 'host at ' || host(ip) || ' (discovered)', cmdb.claimed(ci_id), at, at
    FROM w_host WHERE is_new ORDER BY ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value)
  SELECT DISTINCT ON (h.hostname) h.ci_id, 'fqdn', h.hostname FROM w_host h
   WHERE h.is_new AND h.hostname IS NOT NULL AND h.hostname ~ '^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?$'
     AND NOT cmdb.junk_identity('fqdn', h.hostname)  -- 003
     AND NOT EXISTS (SELECT FROM cmdb.ci_identity i WHERE i.kind = 'fqdn' AND i.value = h.hostname AND upper_inf(i.valid))
   ORDER BY h.hostname, h.ci_id;

  -- new interfaces, named after their host
  UPDATE w_iface f SET ci_id = cmdb.next_ci_id(), is_new = true WHERE ci_id IS NULL;
  UPDATE w_iface f SET host_id = h.ci_id FROM w_host h WHERE f.host_id IS NULL AND h.mac = f.mac;
  INSERT INTO w_claim (ci_id, attr, value, at, run)
  SELECT f.ci_id, a.k, a.v, f.at, f.run FROM w_iface f
   CROSS JOIN LATERAL (VALUES ('mac', to_jsonb(f.mac)), ('vendor', to_jsonb(f.vendor)),
                              ('mac_local', to_jsonb(cmdb.local_mac(f.mac)))) a(k, v)
   WHERE a.v IS NOT NULL AND jsonb_typeof(a.v) <> 'null';
  INSERT INTO cmdb.ci (id, type, name, description, attributes, first_seen, last_seen)
  OVERRIDING SYSTEM VALUE
  SELECT f.ci_id, 'network_interface', coalesce(c.name, host(f.ip)) || '/' || f.mac,
         'network interface ' || f.mac || ' (discovered)', cmdb.claimed(f.ci_id), f.at, f.at
    FROM w_iface f LEFT JOIN cmdb.ci c ON c.id = f.host_id
   WHERE f.is_new ORDER BY f.ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value) SELECT ci_id, 'mac', mac FROM w_iface WHERE is_new ORDER BY ci_id;

  -- relationships: end the ones reality contradicts, then add the missing
  UPDATE cmdb.rel r SET valid = tstzrange(lower(r.valid), greatest(lower(r.valid), now()))
    FROM w_iface f
   WHERE r.type = 'has_interface' AND r.target_id = f.ci_id AND upper_inf(r.valid) AND r.source_id <> f.host_id;
  INSERT INTO cmdb.rel (type, source_id, target_id)
  SELECT DISTINCT 'has_interface', f.host_id, f.ci_id FROM w_iface f
   WHERE f.host_id IS NOT NULL AND NOT EXISTS (
     SELECT FROM cmdb.rel r WHERE r.type = 'has_interface' AND r.source_id = f.host_id AND r.target_id = f.ci_id
        AND upper_inf(r.valid));
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
   WHERE NOT EXISTS (SELECT FROM cmdb.rel r WHERE r.type = 'has_address' AND r.source_id = o.owner
                        AND r.target_id = o.ip_ci AND upper_inf(r.valid));

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
  UPDATE w_svc s SET ci_id = i.ci_id FROM cmdb.ci_identity i
   WHERE i.kind = 'endpoint' AND i.value = s.ident AND upper_inf(i.valid);
  UPDATE w_svc SET ci_id = cmdb.next_ci_id(), is_new = true WHERE ci_id IS NULL;
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
           || s.proto || ' (discovered)', cmdb.claimed(s.ci_id), s.at, s.at
    FROM w_svc s JOIN cmdb.ci c ON c.id = s.host_id WHERE s.is_new ORDER BY s.ci_id;
  INSERT INTO cmdb.ci_identity (ci_id, kind, value) SELECT ci_id, 'endpoint', ident FROM w_svc WHERE is_new ORDER BY ci_id;
  INSERT INTO cmdb.rel (type, source_id, target_id)
  SELECT 'provides', s.host_id, s.ci_id FROM w_svc s
   WHERE NOT EXISTS (SELECT FROM cmdb.rel r WHERE r.type = 'provides' AND r.source_id = s.host_id
                        AND r.target_id = s.ci_id AND upper_inf(r.valid));

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
           cmdb.next_ci_id() AS id
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
         cmdb.claimed(w.ci_id), w.at, w.at
    FROM w_ci w WHERE w.is_new ORDER BY w.ci_id;
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
   WHERE NOT EXISTS (SELECT FROM cmdb.ci_identity i WHERE i.kind = x.kind AND i.value = x.value AND upper_inf(i.valid))
   ORDER BY x.kind, x.value, x.line;

  -- the attributes whose winning claim this batch can change: a new or
  -- changed value of this source, or one another source also claims (among
  -- equal priorities the latest wins, so a mere re-observation can change
  -- the winner). An uncontested, unchanged claim leaves the CI as it is.
  IF to_regclass('pg_temp.w_touched') IS NULL THEN
    CREATE TEMP TABLE w_touched (ci_id bigint, attr text, PRIMARY KEY (ci_id, attr)) ON COMMIT DELETE ROWS;
  END IF;
  INSERT INTO w_touched
  SELECT w.ci_id, w.attr FROM w_claim w
   WHERE NOT EXISTS (SELECT FROM cmdb.attr_claim c WHERE c.ci_id = w.ci_id AND c.attr = w.attr
                        AND c.source = p_source AND c.value IS NOT DISTINCT FROM w.value)
      OR EXISTS (SELECT FROM cmdb.attr_claim c WHERE c.ci_id = w.ci_id AND c.attr = w.attr AND c.source <> p_source);

  -- what this source says about the attributes of what it saw (a claim
  -- that would not change is not rewritten)
  INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at, run)
  SELECT ci_id, attr, p_source, value, at, run FROM w_claim
  ON CONFLICT (ci_id, attr, source) DO UPDATE
    SET value = excluded.value, observed_at = greatest(cmdb.attr_claim.observed_at, excluded.observed_at),
        run = excluded.run
  WHERE cmdb.attr_claim.value IS DISTINCT FROM excluded.value OR cmdb.attr_claim.run IS DISTINCT FROM excluded.run
     OR cmdb.attr_claim.observed_at < excluded.observed_at;

  -- sightings of CIs that existed before this batch (new ones were inserted
  -- with their attributes and times)
  INSERT INTO w_seen
  SELECT ci_id, max(at) FROM (SELECT ci_id, at FROM w_ip WHERE NOT is_new UNION ALL SELECT ci_id, at FROM w_iface WHERE NOT is_new
                              UNION ALL SELECT ci_id, at FROM w_host WHERE NOT is_new
                              UNION ALL SELECT ci_id, at FROM w_svc WHERE NOT is_new
                              UNION ALL SELECT ci_id, at FROM w_ci WHERE NOT is_new) x
   GROUP BY ci_id;

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
    SELECT c.id, ((c.attributes || coalesce(w.set_attrs, '{}')) - coalesce(w.unset_attrs, '{}')) - 'missing' AS attrs,
           greatest(c.last_seen, s.at) AS last_seen, coalesce(c.first_seen, s.at) AS first_seen
      FROM w_seen s JOIN cmdb.ci c ON c.id = s.ci_id LEFT JOIN wanted w ON w.ci_id = s.ci_id),
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
-- Suspected duplicates

-- The comparable form of an evidence value, or NULL when it is junk.
CREATE FUNCTION cmdb.dup_key(p_kind text, p_value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN cmdb.junk_identity(p_kind, p_value) THEN NULL
            WHEN p_kind = 'fqdn' THEN lower(rtrim(btrim(p_value), '.'))
            ELSE lower(btrim(p_value)) END;

-- An address stated as an attribute value, in identity form; NULL when it
-- is not an address or one every machine has (loopback, unspecified,
-- broadcast).
CREATE FUNCTION cmdb.dup_addr(p_value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  a inet;
BEGIN
  IF p_value IS NULL OR p_value !~ '^[0-9A-Fa-f:.]{2,45}$' THEN
    RETURN NULL;
  END IF;
  a := p_value::inet;
  IF a << '127.0.0.0/8' OR a IN ('0.0.0.0', '255.255.255.255', '::', '::1') THEN
    RETURN NULL;
  END IF;
  RETURN host(a);
EXCEPTION WHEN invalid_text_representation THEN
  RETURN NULL;
END $$;

-- Pairs of CIs in operation (planned, live, maintenance) of the same type
-- that share evidence of being one thing, p_type (with its subtypes) or all.
-- Evidence, with its weight:
--   serial    90  same serial (attribute or identity)
--   uuid      90  same machine UUID (attribute or identity)
--   host name 70  same hostname/fqdn attribute or fqdn identity
--   address   60  an address one CI states (attribute ip, ip_address or
--                 address) and another holds (its ip identity, or through
--                 has_address/has_interface) or states too
--   name      50  same name, ignoring case; 20 when that is all and the two
--                 hold identities of one kind with different values (two
--                 machines that happen to share a name)
-- Junk values are no evidence. CIs sharing a value are paired with the
-- oldest of them (the natural one to keep), so n CIs with one name give n-1
-- pairs, not n^2/2. The score combines the weights as independent evidence:
-- 100 * (1 - prod(1 - w/100)). Ordered by score, type, then ids.
CREATE FUNCTION cmdb.dup_list(p_type text)
RETURNS TABLE (type text, keep bigint, keep_name text, other bigint, other_name text, score integer,
               reasons text)
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp SET work_mem = '64MB'
-- JIT would spend seconds compiling a plan that runs in about two (1M CIs)
SET jit = off AS $$
DECLARE
  v_scope text := coalesce((SELECT s.value FROM cmdb.setting s WHERE s.name = 'ip_scope'), '');
  v_types text[];
BEGIN
  IF p_type IS NOT NULL THEN
    v_types := ARRAY(WITH RECURSIVE sub AS (
                       SELECT t.name FROM cmdb.ci_type t WHERE t.name = p_type
                       UNION SELECT t.name FROM cmdb.ci_type t JOIN sub ON t.parent = sub.name)
                     SELECT sub.name FROM sub);
    IF cardinality(v_types) = 0 THEN
      RAISE EXCEPTION 'unknown CI type "%" (see: cmdb type list)', p_type USING ERRCODE = '22023';
    END IF;
  END IF;
  RETURN QUERY
  -- Cost: one pass over the CIs grouping their names, one over those that
  -- have an attribute that can be evidence (few), and index lookups from
  -- there. Identities matter only where an attribute states the same value
  -- (two CIs never hold one identity), so they are looked up from the
  -- attributes, not scanned. Nothing is called per CI: values are only
  -- lower-cased, and junk is weeded out per group of equal values.
  WITH facts AS MATERIALIZED (
    SELECT c.id, c.type, f.what, btrim(f.raw) AS raw
      FROM (SELECT c.id, c.type, c.attributes FROM cmdb.ci c
             WHERE c.attributes ?| '{serial,uuid,hostname,fqdn,ip,ip_address,address}'::text[]
               AND c.status IN ('planned', 'live', 'maintenance') AND (v_types IS NULL OR c.type = ANY (v_types))) c
     CROSS JOIN LATERAL (VALUES ('serial', c.attributes ->> 'serial'), ('uuid', c.attributes ->> 'uuid'),
                                ('host name', c.attributes ->> 'hostname'), ('host name', c.attributes ->> 'fqdn'),
                                ('ip', c.attributes ->> 'ip'), ('ip', c.attributes ->> 'ip_address'),
                                ('ip', c.attributes ->> 'address')) f(what, raw)
     WHERE f.raw IS NOT NULL
  ), stated AS MATERIALIZED (
    SELECT f.id, f.type, cmdb.dup_addr(f.raw) AS addr FROM facts f WHERE f.what = 'ip'
  ), keyed AS MATERIALIZED (
    SELECT f.id, f.type, f.what, f.raw,
           CASE f.what WHEN 'host name' THEN lower(rtrim(f.raw, '.')) ELSE lower(f.raw) END AS key,
           CASE f.what WHEN 'host name' THEN 70 ELSE 90 END AS weight
      FROM facts f WHERE f.what IN ('serial', 'uuid', 'host name')
  ), evidence AS (
    SELECT k.id, k.type, k.what, k.key, k.weight FROM keyed k
    UNION ALL
    SELECT c.id, c.type, x.what, x.key, x.weight
      FROM (SELECT DISTINCT k.what, k.key, v.value, k.weight
              FROM keyed k CROSS JOIN LATERAL (VALUES (k.key), (k.raw), (upper(k.raw))) v(value)) x
      JOIN cmdb.ci_identity i ON i.kind = CASE x.what WHEN 'host name' THEN 'fqdn' ELSE x.what END
                             AND i.value = x.value AND upper_inf(i.valid)
      JOIN cmdb.ci c ON c.id = i.ci_id
     WHERE c.status IN ('planned', 'live', 'maintenance') AND (v_types IS NULL OR c.type = ANY (v_types))
    UNION ALL
    SELECT s.id, s.type, 'address', s.addr, 60 FROM stated s WHERE s.addr IS NOT NULL
    UNION ALL
    -- who holds a stated address: the CI with the ip identity and, through
    -- has_address and has_interface, its interface and host
    SELECT c.id, c.type, 'address', a.addr, 60
      FROM (SELECT DISTINCT s.addr FROM stated s WHERE s.addr IS NOT NULL) a
      JOIN cmdb.ci_identity i ON i.kind = 'ip' AND i.value IN (a.addr, a.addr || '%' || v_scope) AND upper_inf(i.valid)
     CROSS JOIN LATERAL (
       SELECT i.ci_id AS id
       UNION
       SELECT ra.source_id FROM cmdb.rel ra
        WHERE ra.target_id = i.ci_id AND ra.type = 'has_address' AND upper_inf(ra.valid)
       UNION
       SELECT ri.source_id FROM cmdb.rel ra
         JOIN cmdb.rel ri ON ri.target_id = ra.source_id AND ri.type = 'has_interface' AND upper_inf(ri.valid)
        WHERE ra.target_id = i.ci_id AND ra.type = 'has_address' AND upper_inf(ra.valid)) h
      JOIN cmdb.ci c ON c.id = h.id
     WHERE c.status IN ('planned', 'live', 'maintenance') AND (v_types IS NULL OR c.type = ANY (v_types))
  ), groups AS (
    SELECT g.* FROM (
      SELECT e.type, e.what, e.key, min(e.id) AS lead
        FROM evidence e GROUP BY e.type, e.what, e.key HAVING min(e.id) <> max(e.id)) g
     WHERE g.what NOT IN ('serial', 'uuid', 'host name')
        OR NOT cmdb.junk_identity(CASE g.what WHEN 'host name' THEN 'fqdn' ELSE g.what END, g.key)
  ), name_groups AS (
    SELECT c.type, lower(c.name) AS key, min(c.id) AS lead FROM cmdb.ci c
     WHERE c.status IN ('planned', 'live', 'maintenance') AND (v_types IS NULL OR c.type = ANY (v_types))
     GROUP BY c.type, lower(c.name) HAVING count(*) > 1
  ), pairs AS (
    SELECT DISTINCT ON (x.type, x.lead, x.id, x.what, x.key) x.*
      FROM (SELECT g.type, g.lead, e.id, g.what, g.key, e.weight
              FROM groups g JOIN evidence e ON e.type = g.type AND e.what = g.what AND e.key = g.key AND e.id <> g.lead
            UNION ALL
            SELECT g.type, g.lead, c.id, 'name', g.key, 50
              FROM name_groups g JOIN cmdb.ci c ON c.type = g.type AND lower(c.name) = g.key AND c.id <> g.lead
             WHERE c.status IN ('planned', 'live', 'maintenance')) x
     ORDER BY x.type, x.lead, x.id, x.what, x.key, x.weight DESC
  ), scored AS (
    SELECT p.type, p.lead, p.id,
           (100 - round(100 * exp(sum(ln(1 - p.weight / 100.0)))))::integer AS score,
           string_agg(format('same %s %s', p.what, p.key), '; ' ORDER BY p.weight DESC, p.what, p.key) AS reasons,
           bool_and(p.what = 'name') AS name_only
      FROM pairs p GROUP BY p.type, p.lead, p.id
  )
  -- names by id, one lookup per pair: the planner, expecting many pairs,
  -- would otherwise hash every CI twice
  SELECT s.type, s.lead, (SELECT a.name FROM cmdb.ci a WHERE a.id = s.lead), s.id,
         (SELECT b.name FROM cmdb.ci b WHERE b.id = s.id),
         CASE WHEN d.kinds IS NULL THEN s.score ELSE 20 END,
         s.reasons || coalesce('; but different ' || d.kinds, '')
    FROM scored s
    LEFT JOIN LATERAL (
      SELECT string_agg(DISTINCT ia.kind, ', ' ORDER BY ia.kind) AS kinds
        FROM cmdb.ci_identity ia JOIN cmdb.ci_identity ib ON ib.kind = ia.kind AND ib.ci_id = s.id AND upper_inf(ib.valid)
       WHERE s.name_only AND ia.ci_id = s.lead AND upper_inf(ia.valid)) d ON true
   ORDER BY 6 DESC, 1, 2, 4;
END $$;

-- ---------------------------------------------------------------------------
-- Merge

-- Merges CI p_other into CI p_keep, in the caller's transaction:
--   1. services p_other provides get endpoint identities of p_keep, so that
--      a re-scan finds them;
--   2. p_other's identities end and p_keep takes them;
--   3. its relationships, both ways, end and are made again with p_keep in
--      its place, except those p_keep already has and those that would
--      relate p_keep to itself (dropped);
--   4. its attribute claims are copied to p_keep (of two claims of one
--      source, the later stands) and p_keep's attributes are recomputed
--      from its claims as ingest does (highest priority, latest among
--      equals); p_other keeps its own claims, as evidence of what it was;
--   5. p_other becomes merged, with attribute merged_into = p_keep;
--   6. one history row 'merge' (ci_id p_keep, other_ci_id p_other) sums it
--      up, so `cmdb ci history` of either CI shows it;
--   7. a service of p_other on a protocol and port p_keep already has a
--      service on is the same service (an endpoint identifies it): it is
--      merged into p_keep's the same way; if that merge is refused (a
--      retired service to keep, say) it is left, with a note saying so.
-- Every step writes history through the usual triggers, with the reason
-- "merge of CI O into CI K" and the session's change reference.
-- Refused (nothing changed): a CI into itself, CIs of different types, an
-- already merged or disposed CI, a retired one to keep.
-- Returns the plan: one row per thing moved, dropped, copied or changed.
-- With p_dry_run everything is done and then rolled back, so the plan is
-- exactly what a real merge would do, and nothing is written.
CREATE FUNCTION cmdb.ci_merge(p_keep bigint, p_other bigint, p_dry_run boolean DEFAULT false)
RETURNS TABLE (step integer, action text, item text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  k cmdb.ci;
  o cmdb.ci;
  plan jsonb := '[]';
  part jsonb;
  moved jsonb;
  new_attrs jsonb;
  n_ident integer;
  n_rel integer;
  n_dropped integer;
  n_claims integer;
  svc_pairs jsonb;
  pair record;
BEGIN
  IF p_keep IS NULL OR p_other IS NULL THEN
    RAISE EXCEPTION 'a merge needs the CI to keep and the CI to merge into it' USING ERRCODE = '22023';
  END IF;
  IF p_keep = p_other THEN
    RAISE EXCEPTION 'cannot merge CI % into itself', p_keep USING ERRCODE = '22023';
  END IF;
  -- both locked, in id order, so that two merges of one pair cannot deadlock
  PERFORM FROM cmdb.ci c WHERE c.id IN (p_keep, p_other) ORDER BY c.id FOR UPDATE;
  SELECT * INTO k FROM cmdb.ci c WHERE c.id = p_keep;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no CI with id %', p_keep USING ERRCODE = 'P0002';
  END IF;
  SELECT * INTO o FROM cmdb.ci c WHERE c.id = p_other;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no CI with id %', p_other USING ERRCODE = 'P0002';
  END IF;
  IF k.type <> o.type THEN
    RAISE EXCEPTION 'CI % (%) is a %, CI % (%) a %: only CIs of the same type can be merged',
      k.id, k.name, k.type, o.id, o.name, o.type USING ERRCODE = '22023';
  END IF;
  IF o.status = 'merged' OR k.status = 'merged' THEN
    RAISE EXCEPTION 'CI % (%) was already merged into CI %',
      CASE WHEN o.status = 'merged' THEN o.id ELSE k.id END, CASE WHEN o.status = 'merged' THEN o.name ELSE k.name END,
      CASE WHEN o.status = 'merged' THEN o.attributes ->> 'merged_into' ELSE k.attributes ->> 'merged_into' END
      USING ERRCODE = '55000';
  END IF;
  IF o.status = 'disposed' OR k.status = 'disposed' THEN
    RAISE EXCEPTION 'CI % (%) is disposed: its record is closed',
      CASE WHEN o.status = 'disposed' THEN o.id ELSE k.id END, CASE WHEN o.status = 'disposed' THEN o.name ELSE k.name END
      USING ERRCODE = '55000';
  END IF;
  IF k.status = 'retired' THEN
    RAISE EXCEPTION 'CI % (%) is retired: keep a CI in operation (or bring it back first: cmdb ci set % --status live)',
      k.id, k.name, k.id USING ERRCODE = '55000';
  END IF;

  BEGIN
    PERFORM set_config('cmdb.reason', format('merge of CI %s into CI %s', p_other, p_keep), true),
            set_config('cmdb.claims_by_caller', 'on', true);

    -- 1. services p_other provides: endpoint identities name their host
    WITH svc AS (
      SELECT i.id, i.ci_id, i.value, p_keep || substr(i.value, length(p_other::text) + 1) AS new_value,
             (SELECT h.ci_id FROM cmdb.ci_identity h
               WHERE h.kind = 'endpoint' AND h.value = p_keep || substr(i.value, length(p_other::text) + 1)
                 AND upper_inf(h.valid)) AS holder
        FROM cmdb.rel r JOIN cmdb.ci_identity i ON i.ci_id = r.target_id AND i.kind = 'endpoint' AND upper_inf(i.valid)
       WHERE r.source_id = p_other AND r.type = 'provides' AND upper_inf(r.valid)
         AND split_part(i.value, '/', 1) = p_other::text),
    ended AS (
      UPDATE cmdb.ci_identity x SET valid = tstzrange(lower(x.valid), greatest(lower(x.valid), now()))
        FROM svc WHERE x.id = svc.id AND svc.holder IS NULL RETURNING x.id),
    added AS (
      INSERT INTO cmdb.ci_identity (ci_id, kind, value)
      SELECT svc.ci_id, 'endpoint', svc.new_value FROM svc WHERE svc.holder IS NULL ORDER BY svc.ci_id RETURNING id)
    SELECT coalesce(jsonb_agg(jsonb_build_array('rekey identity', format('endpoint=%s of CI %s', svc.value, svc.ci_id),
                                                format('now endpoint=%s', svc.new_value)) ORDER BY svc.value)
                      FILTER (WHERE svc.holder IS NULL), '[]'),
           coalesce(jsonb_agg(jsonb_build_array(svc.holder, svc.ci_id, svc.value) ORDER BY svc.value)
                      FILTER (WHERE svc.holder IS NOT NULL), '[]')
      INTO part, svc_pairs FROM svc;
    plan := plan || part;

    -- 2. identities: end them, then give them to p_keep
    WITH ended AS (
      UPDATE cmdb.ci_identity x SET valid = tstzrange(lower(x.valid), greatest(lower(x.valid), now()))
       WHERE x.ci_id = p_other AND upper_inf(x.valid) RETURNING x.id, x.kind, x.value)
    SELECT coalesce(jsonb_agg(jsonb_build_object('kind', e.kind, 'value', e.value) ORDER BY e.id), '[]') INTO moved FROM ended e;
    INSERT INTO cmdb.ci_identity (ci_id, kind, value)
    SELECT p_keep, m.e ->> 'kind', m.e ->> 'value' FROM jsonb_array_elements(moved) WITH ORDINALITY m(e, n) ORDER BY m.n;
    n_ident := jsonb_array_length(moved);
    SELECT coalesce(jsonb_agg(jsonb_build_array('move identity', (m.e ->> 'kind') || '=' || (m.e ->> 'value'),
                                                format('from CI %s to CI %s', p_other, p_keep)) ORDER BY m.n), '[]')
      INTO part FROM jsonb_array_elements(moved) WITH ORDINALITY m(e, n);
    plan := plan || part;

    -- 3. relationships, both ways
    WITH cur AS (
      SELECT x.id, x.type, x.source_id, x.target_id, x.attributes,
             CASE WHEN x.source_id = p_other THEN p_keep ELSE x.source_id END AS new_source,
             CASE WHEN x.target_id = p_other THEN p_keep ELSE x.target_id END AS new_target
        FROM cmdb.rel x WHERE (x.source_id = p_other OR x.target_id = p_other) AND upper_inf(x.valid)),
    r_fate AS (
      SELECT cur.*, CASE WHEN cur.new_source = cur.new_target THEN 'self'
                         -- a service merged in step 7: p_keep provides its twin
                         WHEN cur.type = 'provides' AND cur.source_id = p_other
                              AND cur.target_id IN (SELECT (e ->> 1)::bigint FROM jsonb_array_elements(svc_pairs) e) THEN 'twin'
                         WHEN EXISTS (SELECT FROM cmdb.rel y WHERE y.type = cur.type AND y.source_id = cur.new_source
                                         AND y.target_id = cur.new_target AND upper_inf(y.valid)) THEN 'dup'
                         ELSE 'move' END AS fate
        FROM cur),
    ended AS (
      UPDATE cmdb.rel x SET valid = tstzrange(lower(x.valid), greatest(lower(x.valid), now()))
        FROM r_fate WHERE x.id = r_fate.id RETURNING x.id)
    SELECT coalesce(jsonb_agg(to_jsonb(r_fate) ORDER BY r_fate.id), '[]') INTO moved FROM r_fate;
    INSERT INTO cmdb.rel (type, source_id, target_id, attributes)
    SELECT m.e ->> 'type', (m.e ->> 'new_source')::bigint, (m.e ->> 'new_target')::bigint, m.e -> 'attributes'
      FROM jsonb_array_elements(moved) WITH ORDINALITY m(e, n) WHERE m.e ->> 'fate' = 'move' ORDER BY m.n;
    SELECT count(*) FILTER (WHERE m.e ->> 'fate' = 'move'), count(*) FILTER (WHERE m.e ->> 'fate' <> 'move'),
           coalesce(jsonb_agg(jsonb_build_array(
             CASE m.e ->> 'fate' WHEN 'move' THEN 'move relationship' ELSE 'drop relationship' END,
             format('CI %s %s CI %s', m.e ->> 'source_id', m.e ->> 'type', m.e ->> 'target_id'),
             CASE m.e ->> 'fate'
               WHEN 'move' THEN format('now CI %s %s CI %s', m.e ->> 'new_source', m.e ->> 'type', m.e ->> 'new_target')
               WHEN 'dup' THEN format('CI %s already has it', p_keep)
               WHEN 'twin' THEN format('CI %s provides a service on that port already (merged below)', p_keep)
               ELSE format('it would relate CI %s to itself', p_keep) END) ORDER BY m.n), '[]')
      INTO n_rel, n_dropped, part
      FROM jsonb_array_elements(moved) WITH ORDINALITY m(e, n);
    plan := plan || part;

    -- 4. attribute claims, then p_keep's attributes from its claims
    WITH oc AS (SELECT c.* FROM cmdb.attr_claim c WHERE c.ci_id = p_other),
    up AS (
      INSERT INTO cmdb.attr_claim AS c (ci_id, attr, source, value, observed_at, run)
      SELECT p_keep, oc.attr, oc.source, oc.value, oc.observed_at, oc.run FROM oc
      ON CONFLICT (ci_id, attr, source) DO UPDATE
        SET value = excluded.value, observed_at = excluded.observed_at, run = excluded.run
        WHERE excluded.observed_at > c.observed_at
      RETURNING c.attr, c.source)
    SELECT count(up.attr),
           coalesce(jsonb_agg(jsonb_build_array(
             CASE WHEN up.attr IS NULL THEN 'keep claim' ELSE 'copy claim' END,
             format('%s from %s', oc.attr, oc.source),
             CASE WHEN up.attr IS NULL THEN format('CI %s has a later claim of %s', p_keep, oc.source)
                  ELSE coalesce(oc.value::text, 'absent') END) ORDER BY oc.attr, oc.source), '[]')
      INTO n_claims, part
      FROM oc LEFT JOIN up ON up.attr = oc.attr AND up.source = oc.source;
    plan := plan || part;

    WITH touched AS (SELECT DISTINCT c.attr FROM cmdb.attr_claim c WHERE c.ci_id = p_other),
    best AS (
      SELECT DISTINCT ON (c.attr) c.attr, c.value
        FROM cmdb.attr_claim c JOIN touched t ON t.attr = c.attr JOIN cmdb.source s ON s.name = c.source
       WHERE c.ci_id = p_keep
       ORDER BY c.attr, s.priority DESC, c.observed_at DESC)
    SELECT (k.attributes || coalesce(jsonb_object_agg(b.attr, b.value) FILTER (WHERE b.value IS NOT NULL), '{}'))
           - coalesce(array_agg(b.attr) FILTER (WHERE b.value IS NULL), '{}')
      INTO new_attrs FROM best b;
    SELECT coalesce(jsonb_agg(jsonb_build_array('set attribute', x.key,
                                                format('%s -> %s', coalesce(k.attributes -> x.key, 'null'),
                                                       coalesce(new_attrs -> x.key, 'null'))) ORDER BY x.key), '[]')
      INTO part
      FROM (SELECT jsonb_object_keys(k.attributes) UNION SELECT jsonb_object_keys(new_attrs)) x(key)
     WHERE (k.attributes -> x.key) IS DISTINCT FROM (new_attrs -> x.key);
    plan := plan || part;
    UPDATE cmdb.ci c SET attributes = new_attrs, first_seen = least(k.first_seen, o.first_seen),
                         last_seen = greatest(k.last_seen, o.last_seen)
     WHERE c.id = p_keep;

    -- 5. the merged CI: closed, naming where it went
    PERFORM set_config('cmdb.merging', 'on', true);
    UPDATE cmdb.ci c SET status = 'merged', attributes = c.attributes || jsonb_build_object('merged_into', p_keep)
     WHERE c.id = p_other;
    PERFORM set_config('cmdb.merging', '', true);
    plan := plan || jsonb_build_array(jsonb_build_array('close', format('CI %s (%s)', o.id, o.name),
                                                        format('status %s -> merged, merged_into %s', o.status, p_keep)));

    -- 6. the summary both histories show
    PERFORM cmdb.history_append('ci', 'merge', p_keep, p_other, NULL, 'merged_into', NULL,
      jsonb_build_object('kept', p_keep, 'merged', p_other, 'identities', n_ident, 'relationships_moved', n_rel,
                         'relationships_dropped', n_dropped, 'claims_copied', n_claims));
    PERFORM set_config('cmdb.reason', '', true),
            set_config('cmdb.claims_by_caller', '', true);

    -- 7. services on one endpoint: one loop turn per such service, a handful
    FOR pair IN SELECT (e ->> 0)::bigint AS keep_svc, (e ->> 1)::bigint AS other_svc, e ->> 2 AS endpoint
                  FROM jsonb_array_elements(svc_pairs) e LOOP
      BEGIN
        SELECT coalesce(jsonb_agg(jsonb_build_array(m.action, m.item, m.detail) ORDER BY m.step), '[]') INTO part
          FROM cmdb.ci_merge(pair.keep_svc, pair.other_svc, false) m;
        plan := plan || jsonb_build_array(jsonb_build_array('merge service', format('CI %s into CI %s', pair.other_svc, pair.keep_svc),
                                                            format('both on the endpoint %s of CI %s',
                                                                   substr(pair.endpoint, length(p_other::text) + 2), p_keep)))
                     || part;
      EXCEPTION WHEN OTHERS THEN
        -- left as it was, but provided by p_keep (step 3 ended its link to p_other)
        INSERT INTO cmdb.rel (type, source_id, target_id) VALUES ('provides', p_keep, pair.other_svc);
        plan := plan || jsonb_build_array(jsonb_build_array('note', format('CI %s (endpoint=%s)', pair.other_svc, pair.endpoint),
          format('the same endpoint as CI %s, not merged (%s): cmdb dup merge %s %s', pair.keep_svc, SQLERRM,
                 pair.keep_svc, pair.other_svc)));
      END;
    END LOOP;

    IF p_dry_run THEN
      RAISE EXCEPTION 'dry run' USING ERRCODE = 'CMDRY';
    END IF;
  EXCEPTION WHEN SQLSTATE 'CMDRY' THEN
    NULL;  -- everything above is rolled back; the plan stays
  END;

  RETURN QUERY
  SELECT p.n::integer, p.e ->> 0, p.e ->> 1, p.e ->> 2 FROM jsonb_array_elements(plan) WITH ORDINALITY p(e, n) ORDER BY p.n;
END $$;

-- ---------------------------------------------------------------------------
-- Rights. Readers read the rules and the suspected duplicates; writers edit
-- rules and merge, through the functions above only.

GRANT SELECT ON cmdb.ident_rule_list, cmdb.ident_rule, cmdb.type_ident_rule TO cmdb_reader, cmdb_writer;
REVOKE ALL ON FUNCTION cmdb.ident_rules_set, cmdb.ident_rules_edit, cmdb.ci_merge FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cmdb.ident_rules_set, cmdb.ident_rules_edit, cmdb.ci_merge TO cmdb_writer;
