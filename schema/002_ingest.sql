-- 002_ingest: sources and their priorities, scan runs, raw observations kept
-- as evidence, per-attribute provenance (claims), and the set-based
-- reconciliation that turns a batch of observations into CIs.
--
-- Provenance model: every source that states an attribute value of a CI
-- leaves a claim (ci, attribute, source) -> value, when. The attribute's
-- value on the CI is the claim of the highest-priority source (the most
-- recent among equals). A lower-priority source never overwrites a higher
-- one; its claim is still kept, so `cmdb ci why` can show it.

SET LOCAL ROLE cmdb_owner;

CREATE TABLE cmdb.source (
  name        text PRIMARY KEY CONSTRAINT source_name_format CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  kind        text NOT NULL CHECK (kind IN ('manual', 'import', 'scanner')),
  priority    integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
  description text NOT NULL DEFAULT ''
);
INSERT INTO cmdb.source VALUES
  ('cli',      'manual',  100, 'changes made with the cmdb command'),
  ('sql',      'manual',  100, 'changes made directly in SQL'),
  ('csv',      'import',   60, 'hand-kept inventories imported from CSV'),
  ('nmap',     'import',   40, 'nmap scans imported from XML'),
  ('masscan',  'import',   30, 'masscan scans imported from JSON'),
  ('discover', 'scanner',  20, 'cmdb discover and cmdb scan');

-- The priority of a source; an unknown name is registered on first use, as
-- manual when a person or script changes CIs under that name.
CREATE FUNCTION cmdb.source_ensure(p_name text, p_kind text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  prio integer;
BEGIN
  SELECT priority INTO prio FROM cmdb.source WHERE name = p_name;
  IF FOUND THEN
    RETURN prio;
  END IF;
  IF p_name !~ '^[a-z][a-z0-9_.-]{0,62}$' THEN
    RAISE EXCEPTION 'invalid source name "%": use lower-case letters, digits, _ . -', p_name USING ERRCODE = '22023';
  END IF;
  INSERT INTO cmdb.source (name, kind, priority, description)
  VALUES (p_name, p_kind, CASE p_kind WHEN 'manual' THEN 100 WHEN 'import' THEN 50 ELSE 20 END,
          'registered on first use')
  ON CONFLICT (name) DO NOTHING;
  RETURN (SELECT priority FROM cmdb.source WHERE name = p_name);
END $$;

CREATE TABLE cmdb.scan_run (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  scan_id      text NOT NULL UNIQUE CHECK (length(scan_id) BETWEEN 1 AND 128),
  source       text NOT NULL REFERENCES cmdb.source(name),
  targets      text[] NOT NULL DEFAULT '{}',
  ports        text,
  options      jsonb,
  scope        cidr[],          -- the networks the scan covered, when known
  scope_ports  jsonb,           -- {"tcp": [[lo, hi], ...], "udp": [...]}, when known
  started      timestamptz,
  finished     timestamptz,
  complete     boolean NOT NULL DEFAULT false,
  ingested_at  timestamptz NOT NULL DEFAULT now(),
  observations bigint NOT NULL DEFAULT 0,
  created      bigint NOT NULL DEFAULT 0,
  updated      bigint NOT NULL DEFAULT 0,
  unchanged    bigint NOT NULL DEFAULT 0,
  missing      bigint NOT NULL DEFAULT 0
);

-- Raw observations, kept as evidence for `observation_retention`.
CREATE TABLE cmdb.observation (
  run   bigint NOT NULL REFERENCES cmdb.scan_run(id),
  line  bigint NOT NULL,
  kind  text NOT NULL,
  at    timestamptz NOT NULL,
  body  jsonb NOT NULL,
  PRIMARY KEY (run, line)
);
CREATE INDEX observation_at_idx ON cmdb.observation (at);

CREATE TABLE cmdb.setting (
  name  text PRIMARY KEY,
  value text NOT NULL,
  description text NOT NULL
);
INSERT INTO cmdb.setting VALUES
  ('observation_retention', '90 days', 'how long raw observations are kept as evidence'),
  ('ip_scope', '', 'the address scope of IP identities written by ingest (empty: the default scope)');

CREATE TABLE cmdb.attr_claim (
  ci_id       bigint NOT NULL REFERENCES cmdb.ci(id),
  attr        text NOT NULL,
  source      text NOT NULL REFERENCES cmdb.source(name),
  value       jsonb,            -- NULL: the source says the attribute is absent
  observed_at timestamptz NOT NULL,
  run         bigint REFERENCES cmdb.scan_run(id),
  PRIMARY KEY (ci_id, attr, source)
);

-- Records the claims of manual changes (cmdb ci set, SQL) so that scanners
-- of lower priority do not overwrite them. Ingest records its own claims and
-- sets cmdb.claims_by_caller.
CREATE FUNCTION cmdb.ci_claims() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  src text := coalesce(nullif(current_setting('cmdb.source', true), ''), 'sql');
BEGIN
  IF coalesce(current_setting('cmdb.claims_by_caller', true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM FROM new_rows WHERE updated_at = now() LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM cmdb.source_ensure(src, 'manual');
  IF TG_OP = 'INSERT' THEN
    INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at)
    SELECT n.id, e.key, src, e.value, now() FROM new_rows n, jsonb_each(n.attributes) e
    ON CONFLICT (ci_id, attr, source) DO UPDATE SET value = excluded.value, observed_at = excluded.observed_at, run = NULL;
  ELSE
    INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at)
    SELECT n.id, k.key, src, n.attributes -> k.key, now()
      FROM old_rows o JOIN new_rows n ON n.id = o.id AND n.updated_at = now()
     CROSS JOIN LATERAL (SELECT jsonb_object_keys(o.attributes) UNION SELECT jsonb_object_keys(n.attributes)) k(key)
     WHERE o.attributes IS DISTINCT FROM n.attributes
       AND (o.attributes -> k.key) IS DISTINCT FROM (n.attributes -> k.key)
    ON CONFLICT (ci_id, attr, source) DO UPDATE SET value = excluded.value, observed_at = excluded.observed_at, run = NULL;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ci_claims_insert AFTER INSERT ON cmdb.ci
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_claims();
CREATE TRIGGER ci_claims_update AFTER UPDATE ON cmdb.ci
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_claims();

-- ---------------------------------------------------------------------------
-- Reconciliation of one batch.
--
-- The caller (libcmdb's ingest) COPYs validated observations into the temp
-- table ingest_stage(line, run, kind, at, body) and calls
-- cmdb.ingest_batch(source) in the same transaction. Everything below is
-- set-based over work tables; nothing loops over rows.
--
-- Identification, in order (junk identifiers never match):
--   ip_address        identity ip = address[%scope]
--   network_interface identity mac (not all-zero, broadcast or multicast)
--   host              its interface's MAC (universally administered only),
--                     then fqdn, then an address it holds; a host seen with an
--                     unknown universal MAC is new hardware and is not matched
--                     by address alone
--   service           identity endpoint = HOST_ID/PROTO/PORT
--   ci (inventories)  the identities given, in order
-- Relationships: host has_interface interface, interface has_address
-- address (or host has_address address when no MAC is known), host provides
-- service. An address that moved to another interface or host is re-pointed:
-- the old relationship ends.

CREATE FUNCTION cmdb.junk_mac(m text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN m IS NULL OR m !~ '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' OR m = '00:00:00:00:00:00'
       OR m = 'ff:ff:ff:ff:ff:ff' OR (('x' || substr(m, 1, 2))::bit(8) & B'00000001') <> B'00000000';

CREATE FUNCTION cmdb.local_mac(m text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (('x' || substr(m, 1, 2))::bit(8) & B'00000010') <> B'00000000';

-- Junk values that identify nothing: placeholders firmware writes into serial
-- and UUID fields, and empty or all-zero strings.
CREATE FUNCTION cmdb.junk_identity(p_kind text, p_value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_value IS NULL OR btrim(p_value) = ''
  OR lower(btrim(p_value)) IN ('0', 'none', 'n/a', 'na', 'null', 'unknown', 'default string',
                               'to be filled by o.e.m.', 'to be filled by oem', 'system serial number',
                               'not specified', 'not applicable', '123456789', 'chassis serial number',
                               'base board serial number', '0123456789', 'xxxxxxxxxx')
  OR btrim(p_value) ~ '^[0\-:.]+$' OR lower(btrim(p_value)) ~ '^f+([-:]f+)*$'
  OR (p_kind = 'mac' AND cmdb.junk_mac(lower(p_value)));

-- identity_normalize that answers NULL for a malformed value instead of
-- failing the batch (inventories carry what people typed).
CREATE FUNCTION cmdb.identity_or_null(p_kind text, p_value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF cmdb.junk_identity(p_kind, p_value) THEN
    RETURN NULL;
  END IF;
  RETURN cmdb.identity_normalize(p_kind, p_value);
EXCEPTION WHEN invalid_parameter_value THEN
  RETURN NULL;
END $$;

CREATE FUNCTION cmdb.ingest_work_tables() RETURNS void
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF to_regclass('pg_temp.w_ip') IS NOT NULL THEN
    RETURN;
  END IF;
  CREATE TEMP TABLE w_ip (ip inet PRIMARY KEY, ident text, ci_id bigint, at timestamptz, run bigint,
                          is_new boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_iface (mac text PRIMARY KEY, ip inet, vendor text, at timestamptz, run bigint, ci_id bigint,
                             host_id bigint, is_new boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_host (ip inet PRIMARY KEY, mac text, hostname text, given_name text, os jsonb, reason text,
                            at timestamptz, run bigint, ci_id bigint, name text,
                            is_new boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_svc (ip inet, proto text, port integer, body jsonb, at timestamptz, run bigint,
                           host_id bigint, ident text, ci_id bigint, is_new boolean NOT NULL DEFAULT false,
                           PRIMARY KEY (ip, proto, port)) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_ci (line bigint PRIMARY KEY, type text, name text, description text, identities jsonb,
                          attributes jsonb, at timestamptz, run bigint, ci_id bigint,
                          is_new boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_claim (ci_id bigint, attr text, value jsonb, at timestamptz, run bigint,
                             PRIMARY KEY (ci_id, attr)) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_seen (ci_id bigint PRIMARY KEY, at timestamptz) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_addr_owner (ip_ci bigint PRIMARY KEY, owner bigint) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_ci_ident (line bigint, ord bigint, kind text, value text) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE w_report (action text, line bigint, ci_id bigint, ci_type text, name text,
                              detail text) ON COMMIT DELETE ROWS;
END $$;

-- New CI ids are taken from the sequence before the INSERT, so that work
-- rows know their CI without matching on names.
CREATE FUNCTION cmdb.next_ci_id() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = cmdb, pg_temp
RETURN nextval(pg_get_serial_sequence('cmdb.ci', 'id'));

-- The attributes a new CI starts with: what this batch claims for it.
-- (PL/pgSQL: w_claim is a temp table that exists only during ingest, and
-- SQL function bodies are checked when created.)
CREATE FUNCTION cmdb.claimed(p_ci bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp AS $$
BEGIN
  RETURN coalesce((SELECT jsonb_object_agg(attr, value) FROM w_claim WHERE ci_id = p_ci), '{}');
END $$;

CREATE FUNCTION cmdb.ingest_batch(p_source text)
RETURNS TABLE (created bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  prio integer := cmdb.source_ensure(p_source, 'scanner');
  scope text := coalesce((SELECT value FROM cmdb.setting WHERE name = 'ip_scope'), '');
  n_created bigint;
  n_updated bigint;
  n_seen bigint;
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
  -- a. by the interface's MAC, universally administered MACs only
  UPDATE w_host h SET ci_id = f.host_id FROM w_iface f
   WHERE h.mac = f.mac AND f.host_id IS NOT NULL AND NOT cmdb.local_mac(f.mac);
  -- b. by name
  UPDATE w_host h SET ci_id = i.ci_id FROM cmdb.ci_identity i
   WHERE h.ci_id IS NULL AND h.hostname IS NOT NULL AND i.kind = 'fqdn' AND i.value = h.hostname
     AND upper_inf(i.valid);
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
  INSERT INTO w_addr_owner
  SELECT DISTINCT ON (w.ci_id) w.ci_id, coalesce(f.ci_id, h.ci_id)
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
  UPDATE w_ci w SET ci_id = m.ci_id FROM (
    SELECT DISTINCT ON (x.line) x.line, i.ci_id FROM w_ci_ident x
      JOIN cmdb.ci_identity i ON i.kind = x.kind AND i.value = x.value AND upper_inf(i.valid)
     ORDER BY x.line, x.ord) m
   WHERE m.line = w.line;
  -- an identity that another record of this batch tied to a CI names that CI
  UPDATE w_ci w SET ci_id = m.ci_id FROM (
    SELECT DISTINCT ON (x.line) x.line, o.ci_id FROM w_ci_ident x
      JOIN w_ci_ident y ON y.kind = x.kind AND y.value = x.value AND y.line <> x.line
      JOIN w_ci o ON o.line = y.line AND o.ci_id IS NOT NULL
     ORDER BY x.line, x.ord) m
   WHERE w.line = m.line AND w.ci_id IS NULL;
  UPDATE w_ci w SET ci_id = m.id FROM (
    SELECT c.type, c.name, min(c.id) AS id FROM cmdb.ci c JOIN w_ci w2 ON w2.type = c.type AND w2.name = c.name
     WHERE c.status <> 'disposed' GROUP BY c.type, c.name HAVING count(*) = 1) m
   WHERE w.ci_id IS NULL AND m.type = w.type AND m.name = w.name
     AND NOT EXISTS (SELECT FROM w_ci_ident x WHERE x.line = w.line);
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
      FROM w_ci w3 LEFT JOIN LATERAL (SELECT x.kind, x.value FROM w_ci_ident x WHERE x.line = w3.line
                                      ORDER BY x.ord LIMIT 1) k ON true
     WHERE w3.ci_id IS NULL) f
   WHERE w.line = f.line AND f.line = f.lead_line;
  UPDATE w_ci w SET ci_id = lead.ci_id FROM w_ci lead, (
    SELECT w3.line, first_value(w3.line) OVER (PARTITION BY coalesce(k.kind || '=' || k.value, w3.type || '/' || w3.name)
                                               ORDER BY w3.line) AS lead_line
      FROM w_ci w3 LEFT JOIN LATERAL (SELECT x.kind, x.value FROM w_ci_ident x WHERE x.line = w3.line
                                      ORDER BY x.ord LIMIT 1) k ON true
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

  -- what this source says about the attributes of what it saw
  INSERT INTO cmdb.attr_claim (ci_id, attr, source, value, observed_at, run)
  SELECT ci_id, attr, p_source, value, at, run FROM w_claim
  ON CONFLICT (ci_id, attr, source) DO UPDATE
    SET value = excluded.value, observed_at = greatest(cmdb.attr_claim.observed_at, excluded.observed_at),
        run = excluded.run;

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
  WITH touched AS (SELECT DISTINCT c.ci_id, c.attr FROM w_claim c JOIN w_seen s ON s.ci_id = c.ci_id),
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

-- A scan run by its scan id, created on first sight.
CREATE FUNCTION cmdb.scan_run_for(p_scan_id text, p_source text) RETURNS bigint
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  run_id bigint;
BEGIN
  PERFORM cmdb.source_ensure(p_source, 'scanner');
  INSERT INTO cmdb.scan_run (scan_id, source) VALUES (p_scan_id, p_source)
  ON CONFLICT (scan_id) DO NOTHING RETURNING id INTO run_id;
  IF run_id IS NULL THEN
    SELECT id INTO run_id FROM cmdb.scan_run WHERE scan_id = p_scan_id;
  END IF;
  RETURN run_id;
END $$;

-- The `scan` line: what the run covered.
CREATE FUNCTION cmdb.scan_run_start(p_run bigint, p_body jsonb) RETURNS void
LANGUAGE sql SET search_path = cmdb, pg_temp AS $$
  UPDATE cmdb.scan_run SET
    targets = coalesce(ARRAY(SELECT jsonb_array_elements_text(p_body -> 'targets')), '{}'),
    ports = p_body ->> 'ports',
    options = p_body -> 'options',
    scope = CASE WHEN jsonb_typeof(p_body -> 'scope') = 'array'
                 THEN ARRAY(SELECT jsonb_array_elements_text(p_body -> 'scope'))::cidr[] END,
    scope_ports = p_body -> 'scope_ports',
    started = coalesce((p_body ->> 'started')::timestamptz, (p_body ->> 'at')::timestamptz)
  WHERE id = p_run;
$$;

-- Whether port is inside a scope_ports list of [lo, hi] pairs.
CREATE FUNCTION cmdb.port_in(p_ranges jsonb, p_port integer) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (SELECT FROM jsonb_array_elements(coalesce(p_ranges, '[]')) r
               WHERE p_port BETWEEN (r ->> 0)::integer AND (r ->> 1)::integer);

-- The `scan_end` line. A complete run with a known scope marks what it
-- should have seen and did not as missing (an attribute, so history records
-- it); nothing is ever deleted. An incomplete run marks nothing. Returns how
-- many CIs became missing.
CREATE FUNCTION cmdb.scan_run_end(p_run bigint, p_body jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
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
  svc AS (
    SELECT c.id, c.last_seen FROM cmdb.ci c
      JOIN cmdb.ci_identity i ON i.ci_id = c.id AND i.kind = 'endpoint' AND upper_inf(i.valid)
     WHERE c.type = 'service' AND c.status IN ('live', 'maintenance')
       AND cmdb.port_in(r.scope_ports -> split_part(i.value, '/', 2), split_part(i.value, '/', 3)::integer)
       AND split_part(i.value, '/', 1)::bigint IN (
             SELECT h.source_id FROM cmdb.rel h WHERE h.type = 'provides' AND upper_inf(h.valid))
       AND EXISTS (SELECT FROM addr a JOIN cmdb.rel ra ON ra.target_id = a.id AND ra.type = 'has_address'
                                           AND upper_inf(ra.valid)
                    LEFT JOIN cmdb.rel ri ON ri.target_id = ra.source_id AND ri.type = 'has_interface'
                                           AND upper_inf(ri.valid)
                    WHERE coalesce(ri.source_id, ra.source_id) = split_part(i.value, '/', 1)::bigint)),
  gone AS (
    SELECT id FROM addr WHERE last_seen IS NULL OR last_seen < r.started
    UNION
    SELECT id FROM svc WHERE last_seen IS NULL OR last_seen < r.started),
  marked AS (
    UPDATE cmdb.ci c SET attributes = c.attributes || jsonb_build_object('missing', true, 'missing_since', r.finished)
      FROM gone g WHERE c.id = g.id AND NOT c.attributes ? 'missing'
    RETURNING c.id)
  SELECT count(*) INTO n FROM marked;
  UPDATE cmdb.scan_run SET missing = n WHERE id = p_run;
  PERFORM set_config('cmdb.claims_by_caller', '', true);
  RETURN n;
END $$;

-- Evidence older than the retention goes; history stays forever.
CREATE FUNCTION cmdb.observation_purge() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM cmdb.observation
   WHERE at < now() - (SELECT value FROM cmdb.setting WHERE name = 'observation_retention')::interval;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

GRANT SELECT ON cmdb.source, cmdb.scan_run, cmdb.observation, cmdb.setting, cmdb.attr_claim
  TO cmdb_reader, cmdb_writer;
GRANT INSERT, UPDATE ON cmdb.scan_run, cmdb.attr_claim TO cmdb_writer;
GRANT INSERT ON cmdb.observation TO cmdb_writer;
GRANT INSERT, UPDATE ON cmdb.source TO cmdb_writer;
GRANT UPDATE ON cmdb.setting TO cmdb_writer;
