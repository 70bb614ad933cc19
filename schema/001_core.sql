-- 001_core: the CMDB core data model.
--
-- The database defends its own integrity: every rule that must always hold
-- (lifecycle, identities, append-only hash-chained history, temporal
-- versions, role rights) is enforced here, so that it holds whatever client
-- writes. The C library calls the cmdb.* API functions at the end of this
-- file; psql users may call them too.
--
-- Applied by `cmdb init` / `cmdb migrate` inside one transaction, as a role
-- that can create roles (the embedded server's superuser, or a DBA).

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmdb_owner') THEN
    CREATE ROLE cmdb_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmdb_writer') THEN
    CREATE ROLE cmdb_writer NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmdb_reader') THEN
    CREATE ROLE cmdb_reader NOLOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO cmdb_owner', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO cmdb_writer', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO cmdb_reader', current_database());
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT cmdb_owner TO %I', current_user);
  END IF;
END $$;

SET LOCAL ROLE cmdb_owner;

CREATE SCHEMA cmdb;
REVOKE ALL ON SCHEMA cmdb FROM PUBLIC;
GRANT USAGE ON SCHEMA cmdb TO cmdb_writer, cmdb_reader;

CREATE TABLE cmdb.schema_version (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,          -- sha256 of the migration file, hex
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text NOT NULL DEFAULT session_user
);

-- RFC 3339 UTC text, independent of the session's DateStyle and TimeZone.
CREATE FUNCTION cmdb.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

-- A point in time from user input: anything timestamptz accepts
-- ('2026-11-21 10:00', 'yesterday'), or an interval meaning that long ago
-- ('2 hours', '3 days').
CREATE FUNCTION cmdb.parse_time(p text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
  BEGIN
    RETURN p::timestamptz;
  EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
    NULL;
  END;
  BEGIN
    RETURN now() - p::interval;
  EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
    RAISE EXCEPTION 'invalid time "%": give a timestamp (2026-11-21 10:00Z) or a duration ago (2 hours)', p
      USING ERRCODE = '22007';
  END;
END $$;

-- ---------------------------------------------------------------------------
-- Vocabularies

CREATE TABLE cmdb.ci_status (
  name        text PRIMARY KEY,
  ord         integer NOT NULL UNIQUE,
  description text NOT NULL
);
INSERT INTO cmdb.ci_status VALUES
  ('planned',     1, 'recorded, not yet in operation'),
  ('live',        2, 'in operation'),
  ('maintenance', 3, 'in operation, under maintenance'),
  ('retired',     4, 'taken out of operation, still held'),
  ('disposed',    5, 'gone for good; the record is closed');

CREATE TABLE cmdb.ci_status_transition (
  from_status text REFERENCES cmdb.ci_status(name),
  to_status   text REFERENCES cmdb.ci_status(name),
  PRIMARY KEY (from_status, to_status)
);
INSERT INTO cmdb.ci_status_transition VALUES
  ('planned', 'live'), ('planned', 'retired'),
  ('live', 'maintenance'), ('live', 'retired'),
  ('maintenance', 'live'), ('maintenance', 'retired'),
  ('retired', 'live'), ('retired', 'disposed');

CREATE TABLE cmdb.criticality (
  name text PRIMARY KEY,
  rank integer NOT NULL UNIQUE
);
INSERT INTO cmdb.criticality VALUES ('low', 1), ('medium', 2), ('high', 3), ('critical', 4);

CREATE TABLE cmdb.ci_type (
  name              text PRIMARY KEY
                    CONSTRAINT ci_type_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  parent            text REFERENCES cmdb.ci_type(name),
  description       text NOT NULL CONSTRAINT ci_type_description_not_empty CHECK (btrim(description) <> ''),
  required_attrs    text[] NOT NULL DEFAULT '{}',
  change_controlled boolean NOT NULL DEFAULT false,
  stale_after       interval,
  builtin           boolean NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cmdb.ci_type (name, parent, description, builtin) VALUES
  ('business_service',  NULL, 'a service the business consumes and pays for', true),
  ('application',       NULL, 'software deployed to deliver a service', true),
  ('host',              NULL, 'a physical or virtual machine', true),
  ('network_interface', NULL, 'a network interface of a host', true),
  ('ip_address',        NULL, 'an IP address bound to an interface', true),
  ('subnet',            NULL, 'an IP network', true),
  ('service',           NULL, 'a listening network endpoint (host, protocol, port)', true),
  ('software',          NULL, 'an installed software product', true);

CREATE TABLE cmdb.rel_type (
  name          text PRIMARY KEY CONSTRAINT rel_type_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  forward_label text NOT NULL,
  reverse_label text NOT NULL,
  -- how a failure propagates along the relationship for impact analysis:
  -- forward = from source to target, reverse = from target to source.
  propagation   text NOT NULL CHECK (propagation IN ('none', 'forward', 'reverse', 'both')),
  description   text NOT NULL,
  builtin       boolean NOT NULL DEFAULT false
);
INSERT INTO cmdb.rel_type VALUES
  ('depends_on',    'depends on',    'is depended on by', 'reverse', 'source needs target to work', true),
  ('runs_on',       'runs on',       'runs',              'reverse', 'software or application runs on a host', true),
  ('hosted_on',     'is hosted on',  'hosts',             'reverse', 'virtual host or service hosted on another CI', true),
  ('has_interface', 'has interface', 'is interface of',   'forward', 'host has a network interface', true),
  ('has_address',   'has address',   'is address of',     'forward', 'interface has an IP address', true),
  ('member_of',     'is member of',  'has member',        'none',    'address or host belongs to a subnet or group', true),
  ('provides',      'provides',      'is provided by',    'forward', 'host provides a network service', true),
  ('connects_to',   'connects to',   'is connected from', 'both',    'network connection between two CIs', true);

-- ---------------------------------------------------------------------------
-- Configuration items, identities, relationships

CREATE TABLE cmdb.ci (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type        text NOT NULL REFERENCES cmdb.ci_type(name),
  name        text NOT NULL,
  description text NOT NULL,
  status      text NOT NULL DEFAULT 'live' REFERENCES cmdb.ci_status(name),
  criticality text NOT NULL DEFAULT 'medium' REFERENCES cmdb.criticality(name),
  owner       text,
  attributes  jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  first_seen  timestamptz,
  last_seen   timestamptz,
  CONSTRAINT ci_name_not_empty CHECK (btrim(name) <> ''),
  CONSTRAINT ci_name_length CHECK (length(name) <= 255),
  CONSTRAINT ci_name_no_control CHECK (name !~ '[\x01-\x1f\x7f\u0080-\u009f]'),
  CONSTRAINT ci_description_not_empty CHECK (btrim(description) <> ''),
  CONSTRAINT ci_description_length CHECK (length(description) <= 4000),
  CONSTRAINT ci_owner_length CHECK (owner IS NULL OR (btrim(owner) <> '' AND length(owner) <= 255)),
  CONSTRAINT ci_attributes_object CHECK (jsonb_typeof(attributes) = 'object')
);
CREATE INDEX ci_type_idx ON cmdb.ci (type, id);
CREATE INDEX ci_name_idx ON cmdb.ci (name text_pattern_ops);
CREATE INDEX ci_attributes_idx ON cmdb.ci USING gin (attributes jsonb_path_ops);
CREATE INDEX ci_last_seen_idx ON cmdb.ci (last_seen);

-- The state of each CI over time, one row per version; the current version
-- has an open upper bound. Written only by triggers.
CREATE TABLE cmdb.ci_version (
  ci_id       bigint NOT NULL REFERENCES cmdb.ci(id),
  valid       tstzrange NOT NULL,
  type        text NOT NULL,
  name        text NOT NULL,
  description text NOT NULL,
  status      text NOT NULL,
  criticality text NOT NULL,
  owner       text,
  attributes  jsonb NOT NULL,
  PRIMARY KEY (ci_id, valid)
);
CREATE INDEX ci_version_valid_idx ON cmdb.ci_version USING gist (valid);
CREATE INDEX ci_version_type_idx ON cmdb.ci_version (type, ci_id);
CREATE INDEX ci_version_name_idx ON cmdb.ci_version (name text_pattern_ops);
CREATE INDEX ci_version_attributes_idx ON cmdb.ci_version USING gin (attributes jsonb_path_ops);

CREATE TABLE cmdb.ci_identity (
  id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ci_id  bigint NOT NULL REFERENCES cmdb.ci(id),
  kind   text NOT NULL CONSTRAINT ci_identity_kind_format CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
  value  text NOT NULL
         CONSTRAINT ci_identity_value_not_empty CHECK (btrim(value) <> '')
         CONSTRAINT ci_identity_value_length CHECK (length(value) <= 1024)
         CONSTRAINT ci_identity_value_no_control CHECK (value !~ '[\x01-\x1f\x7f\u0080-\u009f]'),
  valid  tstzrange NOT NULL DEFAULT tstzrange(now(), NULL)
);
-- One current holder per identity across the whole CMDB: this index is what
-- stops two writers (or two scanners) from creating a duplicate.
CREATE UNIQUE INDEX ci_identity_current_idx ON cmdb.ci_identity (kind, value) WHERE upper_inf(valid);
CREATE INDEX ci_identity_ci_idx ON cmdb.ci_identity (ci_id);

CREATE TABLE cmdb.rel (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type       text NOT NULL REFERENCES cmdb.rel_type(name),
  source_id  bigint NOT NULL REFERENCES cmdb.ci(id),
  target_id  bigint NOT NULL REFERENCES cmdb.ci(id),
  attributes jsonb NOT NULL DEFAULT '{}',
  valid      tstzrange NOT NULL DEFAULT tstzrange(now(), NULL),
  CONSTRAINT rel_not_self CHECK (source_id <> target_id),
  CONSTRAINT rel_attributes_object CHECK (jsonb_typeof(attributes) = 'object')
);
CREATE UNIQUE INDEX rel_current_idx ON cmdb.rel (type, source_id, target_id) WHERE upper_inf(valid);
CREATE INDEX rel_source_idx ON cmdb.rel (source_id);
CREATE INDEX rel_target_idx ON cmdb.rel (target_id);

-- ---------------------------------------------------------------------------
-- History: append-only, hash-chained.
--
-- Each row's hash is sha256(previous row's hash || canonical content). The
-- chain head (last id and hash) lives in history_head; the BEFORE INSERT
-- trigger takes its row lock, so appends are serialized in commit order and
-- ids increase along the chain. Deleting or altering any row, or cutting the
-- tail, breaks a link that `cmdb audit chain` reports.

CREATE TABLE cmdb.history (
  id          bigint PRIMARY KEY,
  at          timestamptz NOT NULL,
  txid        bigint NOT NULL,
  db_user     text NOT NULL,
  os_user     text,
  source      text NOT NULL,
  change_ref  text,
  reason      text,
  entity      text NOT NULL CHECK (entity IN ('ci', 'identity', 'rel', 'ci_type', 'rel_type')),
  op          text NOT NULL,
  ci_id       bigint,        -- the CI the row is about (a relationship's source)
  other_ci_id bigint,        -- a relationship's target
  rel_id      bigint,
  field       text,          -- the changed field, 'attributes.KEY' for attributes
  old         jsonb,
  new         jsonb,
  prev_hash   bytea NOT NULL,
  hash        bytea NOT NULL
);
CREATE SEQUENCE cmdb.history_id_seq OWNED BY cmdb.history.id;
CREATE INDEX history_ci_idx ON cmdb.history (ci_id, id) WHERE ci_id IS NOT NULL;
CREATE INDEX history_other_ci_idx ON cmdb.history (other_ci_id, id) WHERE other_ci_id IS NOT NULL;

CREATE TABLE cmdb.history_head (
  one       boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_id   bigint NOT NULL,
  last_hash bytea NOT NULL,
  rows      bigint NOT NULL
);
INSERT INTO cmdb.history_head VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000', 0);

-- The bytes a history row's hash covers. Field order and encodings are fixed
-- forever: changing them breaks every existing chain.
CREATE FUNCTION cmdb.history_content(h cmdb.history) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN convert_to(concat_ws(E'\x1f',
    h.id::text,
    (extract(epoch FROM h.at) * 1000000)::bigint::text,
    h.txid::text,
    h.db_user,
    coalesce(h.os_user, E'\\N'),
    h.source,
    coalesce(h.change_ref, E'\\N'),
    coalesce(h.reason, E'\\N'),
    h.entity,
    h.op,
    coalesce(h.ci_id::text, E'\\N'),
    coalesce(h.other_ci_id::text, E'\\N'),
    coalesce(h.rel_id::text, E'\\N'),
    coalesce(h.field, E'\\N'),
    coalesce(h.old::text, E'\\N'),
    coalesce(h.new::text, E'\\N')), 'UTF8');

CREATE FUNCTION cmdb.history_row_hash(h cmdb.history) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(h.prev_hash || cmdb.history_content(h));

CREATE FUNCTION cmdb.history_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  head cmdb.history_head;
BEGIN
  SELECT * INTO head FROM cmdb.history_head WHERE one FOR UPDATE;
  NEW.id := nextval('cmdb.history_id_seq');
  NEW.at := clock_timestamp();
  NEW.txid := txid_current();
  NEW.db_user := session_user;
  NEW.prev_hash := head.last_hash;
  NEW.hash := cmdb.history_row_hash(NEW);
  UPDATE cmdb.history_head SET last_id = NEW.id, last_hash = NEW.hash, rows = rows + 1 WHERE one;
  RETURN NEW;
END $$;
CREATE TRIGGER history_chain BEFORE INSERT ON cmdb.history
  FOR EACH ROW EXECUTE FUNCTION cmdb.history_chain();

CREATE FUNCTION cmdb.history_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'history is append-only: % is not allowed on %', TG_OP, TG_TABLE_NAME
    USING ERRCODE = '42501';
END $$;
CREATE TRIGGER history_no_update BEFORE UPDATE OR DELETE ON cmdb.history
  FOR EACH ROW EXECUTE FUNCTION cmdb.history_immutable();
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON cmdb.history
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_immutable();
CREATE TRIGGER history_head_no_delete BEFORE DELETE ON cmdb.history_head
  FOR EACH ROW EXECUTE FUNCTION cmdb.history_immutable();
CREATE TRIGGER history_head_no_truncate BEFORE TRUNCATE ON cmdb.history_head
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_immutable();

-- Appends one history row with the session's actor settings. Called by the
-- triggers below; SECURITY DEFINER because writers may not touch history.
CREATE FUNCTION cmdb.history_append(p_entity text, p_op text, p_ci_id bigint, p_other_ci_id bigint,
                                    p_rel_id bigint, p_field text, p_old jsonb, p_new jsonb)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
  INSERT INTO cmdb.history (id, at, txid, db_user, os_user, source, change_ref, reason, entity, op,
                            ci_id, other_ci_id, rel_id, field, old, new, prev_hash, hash)
  VALUES (0, now(), 0, session_user,
          nullif(current_setting('cmdb.os_user', true), ''),
          coalesce(nullif(current_setting('cmdb.source', true), ''), 'sql'),
          nullif(current_setting('cmdb.change_ref', true), ''),
          nullif(current_setting('cmdb.reason', true), ''),
          p_entity, p_op, p_ci_id, p_other_ci_id, p_rel_id, p_field, p_old, p_new, '', '');
$$;
REVOKE ALL ON FUNCTION cmdb.history_append FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- CI rules and their history

-- Attribute keys and values, and the attributes the type (and its ancestors)
-- require. Raises with a message that names the offending key.
CREATE FUNCTION cmdb.check_attributes(p_type text, p_attrs jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp AS $$
DECLARE
  k text;
  v jsonb;
  missing text[];
BEGIN
  IF jsonb_typeof(p_attrs) <> 'object' THEN
    RAISE EXCEPTION 'attributes must be a JSON object, not %', jsonb_typeof(p_attrs) USING ERRCODE = '22023';
  END IF;
  FOR k, v IN SELECT * FROM jsonb_each(p_attrs) LOOP
    IF k !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$' THEN
      RAISE EXCEPTION 'invalid attribute name "%": use letters, digits, _ . : - (at most 64, starting with a letter or _)', k
        USING ERRCODE = '22023';
    END IF;
    IF octet_length(v::text) > 65536 THEN
      RAISE EXCEPTION 'attribute "%" is % bytes long; the limit is 65536', k, octet_length(v::text)
        USING ERRCODE = '22001';
    END IF;
  END LOOP;
  WITH RECURSIVE chain AS (
    SELECT name, parent, required_attrs FROM cmdb.ci_type WHERE name = p_type
    UNION ALL
    SELECT t.name, t.parent, t.required_attrs FROM cmdb.ci_type t JOIN chain c ON t.name = c.parent
  )
  SELECT array_agg(DISTINCT r ORDER BY r) INTO missing
  FROM chain, unnest(chain.required_attrs) r
  WHERE NOT p_attrs ? r;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'type % requires attribute%: %', p_type,
      CASE WHEN cardinality(missing) > 1 THEN 's' ELSE '' END, array_to_string(missing, ', ')
      USING ERRCODE = '23502';
  END IF;
END $$;

CREATE FUNCTION cmdb.ci_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  controlled boolean;
  allowed text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'CIs are never deleted: retire CI % (then dispose of it) instead', OLD.id
      USING ERRCODE = '55000';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    NEW.created_at := OLD.created_at;
    IF (NEW.type, NEW.name, NEW.description, NEW.status, NEW.criticality, NEW.owner, NEW.attributes)
       IS NOT DISTINCT FROM
       (OLD.type, OLD.name, OLD.description, OLD.status, OLD.criticality, OLD.owner, OLD.attributes) THEN
      NEW.updated_at := OLD.updated_at;   -- only sightings changed
      RETURN NEW;
    END IF;
    IF OLD.status = 'disposed' THEN
      RAISE EXCEPTION 'CI % (%) is disposed: its record is closed', OLD.id, OLD.name USING ERRCODE = '55000';
    END IF;
    IF NEW.status <> OLD.status AND NOT EXISTS (
         SELECT FROM cmdb.ci_status_transition WHERE from_status = OLD.status AND to_status = NEW.status) THEN
      SELECT string_agg(to_status, ', ' ORDER BY s.ord) INTO allowed
        FROM cmdb.ci_status_transition JOIN cmdb.ci_status s ON s.name = to_status
       WHERE from_status = OLD.status;
      RAISE EXCEPTION 'illegal status change for CI %: % -> % (from % only: %)',
        OLD.id, OLD.status, NEW.status, OLD.status, coalesce(allowed, 'none')
        USING ERRCODE = '55000';
    END IF;
    SELECT change_controlled INTO controlled FROM cmdb.ci_type WHERE name = OLD.type;
    IF controlled AND coalesce(current_setting('cmdb.change_ref', true), '') = '' THEN
      RAISE EXCEPTION 'CI % is of type %, which is under change control: name the change (--change REF)',
        OLD.id, OLD.type USING ERRCODE = '55000';
    END IF;
    NEW.updated_at := now();
  END IF;
  PERFORM cmdb.check_attributes(NEW.type, NEW.attributes);
  RETURN NEW;
END $$;
CREATE TRIGGER ci_guard BEFORE INSERT OR UPDATE OR DELETE ON cmdb.ci
  FOR EACH ROW EXECUTE FUNCTION cmdb.ci_guard();

CREATE FUNCTION cmdb.ci_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  k text;
  changed boolean := false;
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM cmdb.history_append('ci', 'create', NEW.id, NULL, NULL, NULL, NULL,
      jsonb_build_object('type', NEW.type, 'name', NEW.name, 'description', NEW.description,
                         'status', NEW.status, 'criticality', NEW.criticality, 'owner', NEW.owner,
                         'attributes', NEW.attributes));
    changed := true;
  ELSE
    IF NEW.type IS DISTINCT FROM OLD.type THEN
      PERFORM cmdb.history_append('ci', 'update', NEW.id, NULL, NULL, 'type', to_jsonb(OLD.type), to_jsonb(NEW.type));
      changed := true;
    END IF;
    IF NEW.name IS DISTINCT FROM OLD.name THEN
      PERFORM cmdb.history_append('ci', 'update', NEW.id, NULL, NULL, 'name', to_jsonb(OLD.name), to_jsonb(NEW.name));
      changed := true;
    END IF;
    IF NEW.description IS DISTINCT FROM OLD.description THEN
      PERFORM cmdb.history_append('ci', 'update', NEW.id, NULL, NULL, 'description',
                                  to_jsonb(OLD.description), to_jsonb(NEW.description));
      changed := true;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
      PERFORM cmdb.history_append('ci', CASE NEW.status WHEN 'retired' THEN 'retire'
                                                         WHEN 'disposed' THEN 'dispose' ELSE 'status' END,
                                  NEW.id, NULL, NULL, 'status', to_jsonb(OLD.status), to_jsonb(NEW.status));
      changed := true;
    END IF;
    IF NEW.criticality IS DISTINCT FROM OLD.criticality THEN
      PERFORM cmdb.history_append('ci', 'update', NEW.id, NULL, NULL, 'criticality',
                                  to_jsonb(OLD.criticality), to_jsonb(NEW.criticality));
      changed := true;
    END IF;
    IF NEW.owner IS DISTINCT FROM OLD.owner THEN
      PERFORM cmdb.history_append('ci', 'update', NEW.id, NULL, NULL, 'owner', to_jsonb(OLD.owner), to_jsonb(NEW.owner));
      changed := true;
    END IF;
    IF NEW.attributes IS DISTINCT FROM OLD.attributes THEN
      FOR k IN SELECT key FROM (SELECT jsonb_object_keys(OLD.attributes) AS key
                                UNION SELECT jsonb_object_keys(NEW.attributes)) keys ORDER BY key LOOP
        IF (OLD.attributes -> k) IS DISTINCT FROM (NEW.attributes -> k) THEN
          PERFORM cmdb.history_append('ci', 'update', NEW.id, NULL, NULL, 'attributes.' || k,
                                      OLD.attributes -> k, NEW.attributes -> k);
        END IF;
      END LOOP;
      changed := true;
    END IF;
  END IF;
  IF changed THEN
    -- two changes in one transaction share a start time: replace, do not split
    DELETE FROM cmdb.ci_version WHERE ci_id = NEW.id AND valid = tstzrange(now(), NULL);
    UPDATE cmdb.ci_version SET valid = tstzrange(lower(valid), now())
     WHERE ci_id = NEW.id AND upper_inf(valid);
    INSERT INTO cmdb.ci_version VALUES (NEW.id, tstzrange(now(), NULL), NEW.type, NEW.name, NEW.description,
                                        NEW.status, NEW.criticality, NEW.owner, NEW.attributes);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ci_record AFTER INSERT OR UPDATE ON cmdb.ci
  FOR EACH ROW EXECUTE FUNCTION cmdb.ci_record();

-- Identities and relationships are never deleted either: closing the
-- validity range ends them, so past states stay readable.
CREATE FUNCTION cmdb.temporal_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '% rows are never deleted: end them instead', TG_TABLE_NAME USING ERRCODE = '55000';
  END IF;
  IF NOT upper_inf(OLD.valid) THEN
    RAISE EXCEPTION '% % has ended and cannot change', TG_TABLE_NAME, OLD.id USING ERRCODE = '55000';
  END IF;
  IF TG_TABLE_NAME = 'ci_identity' THEN
    IF (NEW.ci_id, NEW.kind, NEW.value) IS DISTINCT FROM (OLD.ci_id, OLD.kind, OLD.value) THEN
      RAISE EXCEPTION 'an identity cannot be edited: end it and add a new one' USING ERRCODE = '55000';
    END IF;
  ELSIF (NEW.type, NEW.source_id, NEW.target_id) IS DISTINCT FROM (OLD.type, OLD.source_id, OLD.target_id) THEN
    RAISE EXCEPTION 'a relationship cannot be re-pointed: end it and add a new one' USING ERRCODE = '55000';
  END IF;
  IF lower(NEW.valid) IS DISTINCT FROM lower(OLD.valid) THEN
    RAISE EXCEPTION 'the start of % % cannot change', TG_TABLE_NAME, OLD.id USING ERRCODE = '55000';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ci_identity_guard BEFORE UPDATE OR DELETE ON cmdb.ci_identity
  FOR EACH ROW EXECUTE FUNCTION cmdb.temporal_guard();
CREATE TRIGGER rel_guard BEFORE UPDATE OR DELETE ON cmdb.rel
  FOR EACH ROW EXECUTE FUNCTION cmdb.temporal_guard();

CREATE FUNCTION cmdb.ci_identity_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM cmdb.history_append('identity', 'identity_add', NEW.ci_id, NULL, NULL, NEW.kind, NULL, to_jsonb(NEW.value));
  ELSIF upper_inf(OLD.valid) AND NOT upper_inf(NEW.valid) THEN
    PERFORM cmdb.history_append('identity', 'identity_remove', NEW.ci_id, NULL, NULL, NEW.kind, to_jsonb(NEW.value), NULL);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ci_identity_record AFTER INSERT OR UPDATE ON cmdb.ci_identity
  FOR EACH ROW EXECUTE FUNCTION cmdb.ci_identity_record();

CREATE FUNCTION cmdb.rel_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM cmdb.history_append('rel', 'relate', NEW.source_id, NEW.target_id, NEW.id, NEW.type, NULL,
      jsonb_build_object('type', NEW.type, 'source', NEW.source_id, 'target', NEW.target_id,
                         'attributes', NEW.attributes));
  ELSIF upper_inf(OLD.valid) AND NOT upper_inf(NEW.valid) THEN
    PERFORM cmdb.history_append('rel', 'unrelate', NEW.source_id, NEW.target_id, NEW.id, NEW.type,
      jsonb_build_object('type', NEW.type, 'source', NEW.source_id, 'target', NEW.target_id,
                         'attributes', OLD.attributes), NULL);
  ELSIF NEW.attributes IS DISTINCT FROM OLD.attributes THEN
    PERFORM cmdb.history_append('rel', 'update', NEW.source_id, NEW.target_id, NEW.id, 'attributes',
                                OLD.attributes, NEW.attributes);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER rel_record AFTER INSERT OR UPDATE ON cmdb.rel
  FOR EACH ROW EXECUTE FUNCTION cmdb.rel_record();

CREATE FUNCTION cmdb.type_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'CI types are never deleted' USING ERRCODE = '55000';
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.name <> OLD.name THEN
    RAISE EXCEPTION 'a CI type cannot be renamed' USING ERRCODE = '55000';
  END IF;
  IF NEW.parent IS NOT NULL AND EXISTS (
      WITH RECURSIVE up AS (
        SELECT NEW.parent AS name
        UNION SELECT t.parent FROM cmdb.ci_type t JOIN up ON t.name = up.name WHERE t.parent IS NOT NULL)
      SELECT FROM up WHERE name = NEW.name) THEN
    RAISE EXCEPTION 'type % cannot have % as parent: that would make a cycle', NEW.name, NEW.parent
      USING ERRCODE = '22023';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ci_type_guard BEFORE INSERT OR UPDATE OR DELETE ON cmdb.ci_type
  FOR EACH ROW EXECUTE FUNCTION cmdb.type_guard();

CREATE FUNCTION cmdb.type_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
BEGIN
  PERFORM cmdb.history_append(TG_TABLE_NAME, lower(TG_OP), NULL, NULL, NULL, NULL,
    CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END, to_jsonb(NEW));
  RETURN NULL;
END $$;
CREATE TRIGGER ci_type_record AFTER INSERT OR UPDATE ON cmdb.ci_type
  FOR EACH ROW EXECUTE FUNCTION cmdb.type_record();
CREATE TRIGGER rel_type_record AFTER INSERT OR UPDATE ON cmdb.rel_type
  FOR EACH ROW EXECUTE FUNCTION cmdb.type_record();

-- ---------------------------------------------------------------------------
-- API: what the cmdb command calls. Validation happens here first, with
-- messages that name the problem; the constraints above are the backstop.

-- Canonical form of an identity value for the built-in kinds, so that
-- 00:1A:2b... and 00-1a-2B... are the same MAC. Raises on a malformed value.
CREATE FUNCTION cmdb.identity_normalize(p_kind text, p_value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v text := btrim(p_value);
BEGIN
  IF p_kind IS NULL OR p_kind !~ '^[a-z][a-z0-9_]{0,31}$' THEN
    RAISE EXCEPTION 'invalid identity kind "%": use lower-case letters, digits and _', p_kind USING ERRCODE = '22023';
  END IF;
  IF v IS NULL OR v = '' THEN
    RAISE EXCEPTION 'identity % has an empty value', p_kind USING ERRCODE = '22023';
  END IF;
  CASE p_kind
  WHEN 'mac' THEN
    v := lower(replace(replace(v, '-', ':'), '.', ''));
    IF v ~ '^[0-9a-f]{12}$' THEN
      v := regexp_replace(v, '(..)(?!$)', '\1:', 'g');
    END IF;
    IF v !~ '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' THEN
      RAISE EXCEPTION 'invalid MAC address "%"', p_value USING ERRCODE = '22023';
    END IF;
  WHEN 'ip' THEN
    BEGIN
      v := host(v::inet);
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION 'invalid IP address "%"', p_value USING ERRCODE = '22023';
    END;
  WHEN 'uuid' THEN
    BEGIN
      v := v::uuid::text;
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION 'invalid UUID "%"', p_value USING ERRCODE = '22023';
    END;
  WHEN 'fqdn' THEN
    v := lower(rtrim(v, '.'));
    IF v !~ '^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$' OR length(v) > 253 THEN
      RAISE EXCEPTION 'invalid host name "%"', p_value USING ERRCODE = '22023';
    END IF;
  ELSE
    NULL;
  END CASE;
  RETURN v;
END $$;

-- Adds one identity to a CI; a value already held by another CI is refused
-- with the holder named.
CREATE FUNCTION cmdb.identity_add(p_ci bigint, p_kind text, p_value text) RETURNS bigint
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  v text := cmdb.identity_normalize(p_kind, p_value);
  holder record;
  new_id bigint;
BEGIN
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

CREATE FUNCTION cmdb.identity_remove(p_ci bigint, p_kind text, p_value text) RETURNS void
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  v text := cmdb.identity_normalize(p_kind, p_value);
BEGIN
  UPDATE cmdb.ci_identity SET valid = tstzrange(lower(valid), greatest(lower(valid), now()))
   WHERE ci_id = p_ci AND kind = p_kind AND value = v AND upper_inf(valid);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'CI % has no identity %=%', p_ci, p_kind, v USING ERRCODE = 'P0002';
  END IF;
END $$;

CREATE FUNCTION cmdb.check_ci_fields(p_name text, p_description text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_name IS NOT NULL THEN
    IF btrim(p_name) = '' THEN
      RAISE EXCEPTION 'a CI needs a name' USING ERRCODE = '22023';
    ELSIF length(p_name) > 255 THEN
      RAISE EXCEPTION 'name is % characters long; the limit is 255', length(p_name) USING ERRCODE = '22001';
    ELSIF p_name ~ '[\x01-\x1f\x7f\u0080-\u009f]' THEN
      RAISE EXCEPTION 'name contains a control character' USING ERRCODE = '22023';
    END IF;
  END IF;
  IF p_description IS NOT NULL THEN
    IF btrim(p_description) = '' THEN
      RAISE EXCEPTION 'a CI needs a description (ISO/IEC 20000-1 8.2.6)' USING ERRCODE = '22023';
    ELSIF length(p_description) > 4000 THEN
      RAISE EXCEPTION 'description is % characters long; the limit is 4000', length(p_description)
        USING ERRCODE = '22001';
    END IF;
  END IF;
END $$;

CREATE FUNCTION cmdb.check_vocabulary(p_type text, p_status text, p_criticality text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF p_type IS NOT NULL AND NOT EXISTS (SELECT FROM cmdb.ci_type WHERE name = p_type) THEN
    RAISE EXCEPTION 'unknown CI type "%" (see: cmdb type list)', p_type USING ERRCODE = '22023';
  END IF;
  IF p_status IS NOT NULL AND NOT EXISTS (SELECT FROM cmdb.ci_status WHERE name = p_status) THEN
    RAISE EXCEPTION 'unknown status "%" (one of: %)', p_status,
      (SELECT string_agg(name, ', ' ORDER BY ord) FROM cmdb.ci_status) USING ERRCODE = '22023';
  END IF;
  IF p_criticality IS NOT NULL AND NOT EXISTS (SELECT FROM cmdb.criticality WHERE name = p_criticality) THEN
    RAISE EXCEPTION 'unknown criticality "%" (one of: %)', p_criticality,
      (SELECT string_agg(name, ', ' ORDER BY rank) FROM cmdb.criticality) USING ERRCODE = '22023';
  END IF;
END $$;

-- p_identities: a JSON array of {"kind": K, "value": V}.
CREATE FUNCTION cmdb.ci_add(p_type text, p_name text, p_description text, p_status text,
                            p_criticality text, p_owner text, p_attrs jsonb, p_identities jsonb)
RETURNS bigint LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  new_id bigint;
  ident jsonb;
BEGIN
  PERFORM cmdb.check_vocabulary(p_type, p_status, p_criticality);
  PERFORM cmdb.check_ci_fields(coalesce(p_name, ''), coalesce(p_description, ''));
  IF p_status IN ('retired', 'disposed') THEN
    RAISE EXCEPTION 'a new CI cannot start as %', p_status USING ERRCODE = '22023';
  END IF;
  INSERT INTO cmdb.ci (type, name, description, status, criticality, owner, attributes)
  VALUES (p_type, p_name, p_description, coalesce(p_status, 'live'), coalesce(p_criticality, 'medium'),
          nullif(p_owner, ''), coalesce(p_attrs, '{}'))
  RETURNING id INTO new_id;
  FOR ident IN SELECT * FROM jsonb_array_elements(coalesce(p_identities, '[]')) LOOP
    PERFORM cmdb.identity_add(new_id, ident->>'kind', ident->>'value');
  END LOOP;
  RETURN new_id;
END $$;

-- NULL arguments leave a field as it is; p_set_attrs is merged into the
-- attributes, p_unset names attributes to remove.
CREATE FUNCTION cmdb.ci_set(p_id bigint, p_status text, p_description text, p_criticality text,
                            p_owner text, p_name text, p_set_attrs jsonb, p_unset text[])
RETURNS void LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  cur cmdb.ci;
  k text;
BEGIN
  PERFORM cmdb.check_vocabulary(NULL, p_status, p_criticality);
  PERFORM cmdb.check_ci_fields(p_name, p_description);
  SELECT * INTO cur FROM cmdb.ci WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no CI with id %', p_id USING ERRCODE = 'P0002';
  END IF;
  FOREACH k IN ARRAY coalesce(p_unset, '{}') LOOP
    IF NOT cur.attributes ? k THEN
      RAISE EXCEPTION 'CI % has no attribute "%" to unset', p_id, k USING ERRCODE = '22023';
    END IF;
  END LOOP;
  UPDATE cmdb.ci SET
    status      = coalesce(p_status, status),
    description = coalesce(p_description, description),
    criticality = coalesce(p_criticality, criticality),
    owner       = CASE WHEN p_owner IS NULL THEN owner ELSE nullif(p_owner, '') END,
    name        = coalesce(p_name, name),
    attributes  = (attributes || coalesce(p_set_attrs, '{}')) - coalesce(p_unset, '{}')
  WHERE id = p_id;
END $$;

CREATE FUNCTION cmdb.ci_retire(p_id bigint, p_reason text) RETURNS void
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
DECLARE
  cur text;
BEGIN
  IF p_reason IS NULL OR btrim(p_reason) = '' THEN
    RAISE EXCEPTION 'retiring a CI needs a reason' USING ERRCODE = '22023';
  END IF;
  SELECT status INTO cur FROM cmdb.ci WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no CI with id %', p_id USING ERRCODE = 'P0002';
  END IF;
  IF cur = 'retired' THEN
    RAISE EXCEPTION 'CI % is already retired', p_id USING ERRCODE = '55000';
  END IF;
  PERFORM set_config('cmdb.reason', p_reason, true);
  UPDATE cmdb.ci SET status = 'retired' WHERE id = p_id;
  PERFORM set_config('cmdb.reason', '', true);
END $$;

CREATE FUNCTION cmdb.ci_require(p_id bigint) RETURNS cmdb.ci
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp AS $$
DECLARE
  c cmdb.ci;
BEGIN
  SELECT * INTO c FROM cmdb.ci WHERE id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no CI with id %', p_id USING ERRCODE = 'P0002';
  END IF;
  RETURN c;
END $$;

CREATE FUNCTION cmdb.rel_add(p_source bigint, p_type text, p_target bigint, p_attrs jsonb)
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
  IF src.status = 'disposed' OR dst.status = 'disposed' THEN
    RAISE EXCEPTION 'CI % is disposed and takes no new relationships',
      CASE WHEN src.status = 'disposed' THEN src.id ELSE dst.id END USING ERRCODE = '55000';
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

CREATE FUNCTION cmdb.rel_rm(p_source bigint, p_type text, p_target bigint) RETURNS void
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
BEGIN
  PERFORM cmdb.ci_require(p_source);
  PERFORM cmdb.ci_require(p_target);
  -- a relationship made and ended in one transaction keeps an empty range
  UPDATE cmdb.rel SET valid = tstzrange(lower(valid), greatest(lower(valid), now()))
   WHERE type = p_type AND source_id = p_source AND target_id = p_target AND upper_inf(valid);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no current % relationship from CI % to CI %', p_type, p_source, p_target
      USING ERRCODE = 'P0002';
  END IF;
END $$;

CREATE FUNCTION cmdb.type_add(p_name text, p_parent text, p_description text, p_required text[],
                              p_change_controlled boolean)
RETURNS void LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
BEGIN
  IF p_name IS NULL OR p_name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid type name "%": use lower-case letters, digits and _, starting with a letter', p_name
      USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT FROM cmdb.ci_type WHERE name = p_name) THEN
    RAISE EXCEPTION 'type % already exists', p_name USING ERRCODE = '23505';
  END IF;
  IF p_parent IS NOT NULL AND NOT EXISTS (SELECT FROM cmdb.ci_type WHERE name = p_parent) THEN
    RAISE EXCEPTION 'unknown parent type "%"', p_parent USING ERRCODE = '22023';
  END IF;
  IF p_description IS NULL OR btrim(p_description) = '' THEN
    RAISE EXCEPTION 'a type needs a description' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT FROM unnest(coalesce(p_required, '{}')) r WHERE r !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$') THEN
    RAISE EXCEPTION 'invalid required attribute name in %', p_required USING ERRCODE = '22023';
  END IF;
  INSERT INTO cmdb.ci_type (name, parent, description, required_attrs, change_controlled)
  VALUES (p_name, p_parent, p_description, coalesce(p_required, '{}'), coalesce(p_change_controlled, false));
END $$;

-- Verifies the whole history chain in one pass. Returns no row when the
-- chain is intact, else the first broken row and what is wrong with it.
CREATE FUNCTION cmdb.audit_chain(OUT checked bigint, OUT broken_id bigint, OUT problem text,
                                 OUT head_id bigint, OUT head_hash text)
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp AS $$
DECLARE
  head cmdb.history_head;
  last_row record;
BEGIN
  SELECT * INTO head FROM cmdb.history_head;
  head_id := head.last_id;
  head_hash := encode(head.last_hash, 'hex');
  SELECT count(*) INTO checked FROM cmdb.history;
  SELECT h.id, CASE
           WHEN h.prev_hash IS DISTINCT FROM h.expected_prev THEN
             'its link to the previous row is broken (a row before it was removed or altered)'
           ELSE 'its content does not match its hash (the row was altered)' END
    INTO broken_id, problem
    FROM (SELECT x.id, x.prev_hash, x.hash, cmdb.history_row_hash(x) AS recomputed,
                 coalesce(lag(x.hash) OVER (ORDER BY x.id),
                          '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
                   AS expected_prev
            FROM cmdb.history x) h
   WHERE h.prev_hash IS DISTINCT FROM h.expected_prev OR h.hash IS DISTINCT FROM h.recomputed
   ORDER BY h.id LIMIT 1;
  IF broken_id IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT id, hash INTO last_row FROM cmdb.history ORDER BY id DESC LIMIT 1;
  IF checked <> head.rows OR coalesce(last_row.id, 0) <> head.last_id
     OR coalesce(last_row.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
        <> head.last_hash THEN
    broken_id := coalesce(last_row.id, 0);
    problem := format('the chain ends at row %s with %s rows, but its head records row %s with %s rows (rows were removed from the end)',
                      coalesce(last_row.id, 0), checked, head.last_id, head.rows);
  END IF;
END $$;

-- ---------------------------------------------------------------------------
-- Rights. Writers change CIs, identities, relationships and types through
-- DML (the triggers keep history) and never touch history or the schema.
-- Readers read. Nobody holds UPDATE, DELETE or TRUNCATE on history.

GRANT SELECT ON ALL TABLES IN SCHEMA cmdb TO cmdb_reader, cmdb_writer;
GRANT INSERT, UPDATE ON cmdb.ci, cmdb.ci_identity, cmdb.rel, cmdb.ci_type, cmdb.rel_type TO cmdb_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA cmdb TO cmdb_writer, cmdb_reader;
REVOKE EXECUTE ON FUNCTION cmdb.history_append, cmdb.history_chain FROM cmdb_writer, cmdb_reader;
REVOKE UPDATE, DELETE, TRUNCATE ON cmdb.history FROM cmdb_owner;
REVOKE DELETE, TRUNCATE ON cmdb.history_head FROM cmdb_owner;
