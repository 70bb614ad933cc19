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
CREATE UNIQUE INDEX ci_version_current_idx ON cmdb.ci_version (ci_id) WHERE upper_inf(valid);
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
-- History: append-only, hash-chained in blocks.
--
-- Every change is written by a statement-level trigger as one INSERT of
-- history rows: one block. Each row carries the SHA-256 of its own content
-- (a generated column); the block records the rows' id range, count and a
-- digest over their hashes, and is chained to the previous block:
--   block.hash = sha256(prev_block.hash || digest || id, first, last, rows).
-- Altering, removing or inserting a row changes its block's digest; forging
-- the block breaks the next link; cutting the tail disagrees with the head.
-- `cmdb audit chain` (cmdb.audit_chain) checks all of it in one pass.
--
-- Blocks are serialized: the first history write of a transaction locks the
-- head row until commit, so ids and block order follow commit order. The
-- running chain state lives in transaction-local settings (cmdb.chain_*) and
-- is written to the head once, at commit, by a deferred trigger: writing
-- the head per block would grow one tuple's version chain per statement.

CREATE SEQUENCE cmdb.history_id_seq;

-- The bytes a history row's hash covers. Field order and encodings are fixed
-- forever: changing them breaks every existing chain.
CREATE FUNCTION cmdb.history_hash(p_id bigint, p_at timestamptz, p_txid bigint, p_db_user text,
                                  p_os_user text, p_source text, p_change_ref text, p_reason text,
                                  p_entity text, p_op text, p_ci_id bigint, p_other_ci_id bigint,
                                  p_rel_id bigint, p_field text, p_old jsonb, p_new jsonb)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(convert_to(concat_ws(E'\x1f',
    p_id::text,
    (extract(epoch FROM p_at) * 1000000)::bigint::text,
    p_txid::text,
    p_db_user,
    coalesce(p_os_user, E'\\N'),
    p_source,
    coalesce(p_change_ref, E'\\N'),
    coalesce(p_reason, E'\\N'),
    p_entity,
    p_op,
    coalesce(p_ci_id::text, E'\\N'),
    coalesce(p_other_ci_id::text, E'\\N'),
    coalesce(p_rel_id::text, E'\\N'),
    coalesce(p_field, E'\\N'),
    coalesce(p_old::text, E'\\N'),
    coalesce(p_new::text, E'\\N')), 'UTF8'));

CREATE TABLE cmdb.history (
  id          bigint PRIMARY KEY DEFAULT nextval('cmdb.history_id_seq'),
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  txid        bigint NOT NULL DEFAULT txid_current(),
  db_user     text NOT NULL DEFAULT session_user,
  os_user     text DEFAULT nullif(current_setting('cmdb.os_user', true), ''),
  source      text NOT NULL DEFAULT coalesce(nullif(current_setting('cmdb.source', true), ''), 'sql'),
  change_ref  text DEFAULT nullif(current_setting('cmdb.change_ref', true), ''),
  reason      text DEFAULT nullif(current_setting('cmdb.reason', true), ''),
  entity      text NOT NULL CHECK (entity IN ('ci', 'identity', 'rel', 'ci_type', 'rel_type')),
  op          text NOT NULL,
  ci_id       bigint,        -- the CI the row is about (a relationship's source)
  other_ci_id bigint,        -- a relationship's target
  rel_id      bigint,
  field       text,          -- the changed field, 'attributes.KEY' for attributes
  old         jsonb,
  new         jsonb,
  hash        bytea GENERATED ALWAYS AS (cmdb.history_hash(id, at, txid, db_user, os_user, source,
                change_ref, reason, entity, op, ci_id, other_ci_id, rel_id, field, old, new)) STORED
);
ALTER SEQUENCE cmdb.history_id_seq OWNED BY cmdb.history.id;
CREATE INDEX history_ci_idx ON cmdb.history (ci_id, id) WHERE ci_id IS NOT NULL;
CREATE INDEX history_other_ci_idx ON cmdb.history (other_ci_id, id) WHERE other_ci_id IS NOT NULL;

CREATE TABLE cmdb.history_block (
  id        bigint PRIMARY KEY,
  txid      bigint NOT NULL,
  first_id  bigint NOT NULL,
  last_id   bigint NOT NULL,
  rows      bigint NOT NULL,
  digest    bytea NOT NULL,  -- sha256 over the rows' hashes in id order
  prev_hash bytea NOT NULL,
  hash      bytea NOT NULL
);
CREATE INDEX history_block_first_idx ON cmdb.history_block (first_id);

CREATE TABLE cmdb.history_head (
  one        boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_block bigint NOT NULL,
  last_hash  bytea NOT NULL,
  last_id    bigint NOT NULL,
  rows       bigint NOT NULL
);
INSERT INTO cmdb.history_head VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

CREATE FUNCTION cmdb.block_hash(p_prev bytea, p_id bigint, p_first bigint, p_last bigint, p_rows bigint,
                                p_digest bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(p_prev || p_digest || convert_to(concat_ws(E'\x1f', p_id, p_first, p_last, p_rows), 'UTF8'));

-- Before any history row of a statement gets its id: take the head (once
-- per transaction the lock is new; later statements already hold it).
CREATE FUNCTION cmdb.history_lock() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  head cmdb.history_head;
BEGIN
  IF coalesce(current_setting('cmdb.chain_hash', true), '') = '' THEN
    SELECT * INTO head FROM cmdb.history_head WHERE one FOR UPDATE;
    PERFORM set_config('cmdb.chain_hash', encode(head.last_hash, 'hex'), true),
            set_config('cmdb.chain_block', head.last_block::text, true),
            set_config('cmdb.chain_id', head.last_id::text, true),
            set_config('cmdb.chain_rows', head.rows::text, true);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER history_lock BEFORE INSERT ON cmdb.history
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_lock();

-- After the statement: seal its rows into the next block.
CREATE FUNCTION cmdb.history_seal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  b record;
  prev bytea := decode(current_setting('cmdb.chain_hash'), 'hex');
  block_id bigint := current_setting('cmdb.chain_block')::bigint + 1;
  h bytea;
BEGIN
  SELECT min(id) AS first_id, max(id) AS last_id, count(*) AS n,
         sha256(string_agg(hash, ''::bytea ORDER BY id)) AS digest
    INTO b FROM added;
  IF b.n = 0 THEN
    RETURN NULL;
  END IF;
  IF b.first_id <= current_setting('cmdb.chain_id')::bigint THEN
    RAISE EXCEPTION 'history ids must grow: row % follows row %', b.first_id, current_setting('cmdb.chain_id')
      USING ERRCODE = '55000';
  END IF;
  h := cmdb.block_hash(prev, block_id, b.first_id, b.last_id, b.n, b.digest);
  INSERT INTO cmdb.history_block VALUES (block_id, txid_current(), b.first_id, b.last_id, b.n, b.digest, prev, h);
  PERFORM set_config('cmdb.chain_hash', encode(h, 'hex'), true),
          set_config('cmdb.chain_block', block_id::text, true),
          set_config('cmdb.chain_id', b.last_id::text, true),
          set_config('cmdb.chain_rows', (current_setting('cmdb.chain_rows')::bigint + b.n)::text, true);
  RETURN NULL;
END $$;
CREATE TRIGGER history_seal AFTER INSERT ON cmdb.history
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_seal();

-- At commit: the transaction's last block becomes the head. Fires once per
-- block; only the first firing after a new block does any work.
CREATE FUNCTION cmdb.history_flush() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  v_block text := current_setting('cmdb.chain_block', true);
BEGIN
  IF v_block IS NULL OR v_block = '' OR v_block = coalesce(current_setting('cmdb.chain_flushed', true), '') THEN
    RETURN NULL;
  END IF;
  UPDATE cmdb.history_head
     SET last_block = v_block::bigint,
         last_hash = decode(current_setting('cmdb.chain_hash'), 'hex'),
         last_id = current_setting('cmdb.chain_id')::bigint,
         rows = current_setting('cmdb.chain_rows')::bigint
   WHERE one;
  PERFORM set_config('cmdb.chain_flushed', v_block, true);
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER history_flush AFTER INSERT ON cmdb.history_block
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cmdb.history_flush();

CREATE FUNCTION cmdb.history_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'history is append-only: % is not allowed on %', TG_OP, TG_TABLE_NAME
    USING ERRCODE = '42501';
END $$;
CREATE TRIGGER history_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON cmdb.history
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_immutable();
CREATE TRIGGER history_block_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON cmdb.history_block
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_immutable();
CREATE TRIGGER history_head_no_delete BEFORE DELETE OR TRUNCATE ON cmdb.history_head
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.history_immutable();

-- One history row (for the rare row-level changes: types). Bulk changes
-- insert their rows set-based in the statement triggers below.
CREATE FUNCTION cmdb.history_append(p_entity text, p_op text, p_ci_id bigint, p_other_ci_id bigint,
                                    p_rel_id bigint, p_field text, p_old jsonb, p_new jsonb)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
  INSERT INTO cmdb.history (entity, op, ci_id, other_ci_id, rel_id, field, old, new)
  VALUES (p_entity, p_op, p_ci_id, p_other_ci_id, p_rel_id, p_field, p_old, p_new);
$$;
REVOKE ALL ON FUNCTION cmdb.history_append FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- CI rules and their history, set-based: statement triggers see every row a
-- statement changed (transition tables), check the rules in a few queries
-- and write history and versions in one INSERT each. A bulk change of a
-- million rows costs a handful of statements, not a million function calls.

-- Attributes every CI of a type must have, its own and its ancestors'.
CREATE VIEW cmdb.type_required AS
WITH RECURSIVE up AS (
  SELECT name AS type, name AS ancestor FROM cmdb.ci_type
  UNION ALL
  SELECT up.type, t.parent FROM up JOIN cmdb.ci_type t ON t.name = up.ancestor WHERE t.parent IS NOT NULL
)
SELECT up.type, array_agg(DISTINCT r ORDER BY r) AS required
FROM up JOIN cmdb.ci_type t ON t.name = up.ancestor, unnest(t.required_attrs) r
GROUP BY up.type;

CREATE FUNCTION cmdb.attribute_problem(p_key text, p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
  WHEN p_key !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$' THEN
    format('invalid attribute name "%s": use letters, digits, _ . : - (at most 64, starting with a letter or _)', p_key)
  WHEN octet_length(p_value::text) > 65536 THEN
    format('attribute "%s" is %s bytes long; the limit is 65536', p_key, octet_length(p_value::text))
END;

-- Only the field a BEFORE row trigger must set: created_at stays, and
-- updated_at moves only when a recorded field changed (not for sightings).
CREATE FUNCTION cmdb.ci_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.created_at := OLD.created_at;
  NEW.updated_at := CASE WHEN cmdb.ci_recorded_change(OLD, NEW) THEN now() ELSE OLD.updated_at END;
  RETURN NEW;
END $$;
CREATE TRIGGER ci_stamp BEFORE UPDATE ON cmdb.ci FOR EACH ROW EXECUTE FUNCTION cmdb.ci_stamp();

CREATE FUNCTION cmdb.no_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never deleted: %', TG_TABLE_NAME,
    CASE TG_TABLE_NAME WHEN 'ci' THEN 'retire a CI (then dispose of it) instead'
                       WHEN 'ci_type' THEN 'types stay once defined'
                       ELSE 'end them instead' END
    USING ERRCODE = '55000';
END $$;
CREATE TRIGGER ci_no_delete BEFORE DELETE OR TRUNCATE ON cmdb.ci
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.no_delete();

-- Checks in the statement triggers find the first offending row with
-- min(id) over the whole set, never ORDER BY .. LIMIT 1 over a join: with a
-- LIMIT the planner bets on an early match and picks a nested loop, which is
-- quadratic when nothing matches, the usual case.
CREATE FUNCTION cmdb.ci_created() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  bad_id bigint;
  msg text;
BEGIN
  SELECT min(a.id) INTO bad_id FROM added a, jsonb_each(a.attributes) e
   WHERE cmdb.attribute_problem(e.key, e.value) IS NOT NULL;
  IF bad_id IS NOT NULL THEN
    SELECT min(cmdb.attribute_problem(e.key, e.value)) INTO msg FROM added a, jsonb_each(a.attributes) e
     WHERE a.id = bad_id;
    RAISE EXCEPTION '%', msg USING ERRCODE = '22023';
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
CREATE TRIGGER ci_created AFTER INSERT ON cmdb.ci
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_created();

-- Whether an update changed anything history records (last_seen and
-- first_seen are sightings, not changes).
CREATE FUNCTION cmdb.ci_recorded_change(o cmdb.ci, n cmdb.ci) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (n.type, n.name, n.description, n.status, n.criticality, n.owner, n.attributes)
       IS DISTINCT FROM (o.type, o.name, o.description, o.status, o.criticality, o.owner, o.attributes);

-- ci_stamp moved updated_at to now() on every row whose recorded fields
-- changed, so `n.updated_at = now()` finds candidates without a join.
CREATE FUNCTION cmdb.ci_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  chk record;
  bad_id bigint;
  msg text;
  allowed text;
BEGIN
  PERFORM FROM new_rows WHERE updated_at = now() LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;  -- sightings only
  END IF;
  SELECT min(o.id) FILTER (WHERE o.status = 'disposed') AS disposed,
         min(o.id) FILTER (WHERE o.status <> n.status AND t.from_status IS NULL) AS transition,
         min(o.id) FILTER (WHERE ct.change_controlled) AS controlled
    INTO chk
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    JOIN cmdb.ci_type ct ON ct.name = o.type
    LEFT JOIN cmdb.ci_status_transition t ON t.from_status = o.status AND t.to_status = n.status
   WHERE n.updated_at = now() AND cmdb.ci_recorded_change(o, n);
  IF chk.disposed IS NOT NULL THEN
    SELECT name INTO msg FROM old_rows WHERE id = chk.disposed;
    RAISE EXCEPTION 'CI % (%) is disposed: its record is closed', chk.disposed, msg USING ERRCODE = '55000';
  END IF;
  IF chk.transition IS NOT NULL THEN
    SELECT format('illegal status change for CI %s: %s -> %s (from %s only: %s)', o.id, o.status, n.status,
                  o.status, coalesce((SELECT string_agg(t.to_status, ', ' ORDER BY s.ord)
                                        FROM cmdb.ci_status_transition t JOIN cmdb.ci_status s ON s.name = t.to_status
                                       WHERE t.from_status = o.status), 'none'))
      INTO msg FROM old_rows o, new_rows n WHERE o.id = chk.transition AND n.id = chk.transition;
    RAISE EXCEPTION '%', msg USING ERRCODE = '55000';
  END IF;
  IF chk.controlled IS NOT NULL AND coalesce(current_setting('cmdb.change_ref', true), '') = '' THEN
    SELECT type INTO msg FROM old_rows WHERE id = chk.controlled;
    RAISE EXCEPTION 'CI % is of type %, which is under change control: name the change (--change REF)',
      chk.controlled, msg USING ERRCODE = '55000';
  END IF;
  SELECT min(n.id) INTO bad_id FROM old_rows o JOIN new_rows n ON n.id = o.id, jsonb_each(n.attributes) e
   WHERE n.updated_at = now() AND o.attributes IS DISTINCT FROM n.attributes
     AND cmdb.attribute_problem(e.key, e.value) IS NOT NULL;
  IF bad_id IS NOT NULL THEN
    SELECT min(cmdb.attribute_problem(e.key, e.value)) INTO msg FROM new_rows n, jsonb_each(n.attributes) e
     WHERE n.id = bad_id;
    RAISE EXCEPTION '%', msg USING ERRCODE = '22023';
  END IF;
  SELECT min(n.id) INTO bad_id FROM new_rows n JOIN cmdb.type_required t ON t.type = n.type
   WHERE n.updated_at = now() AND NOT n.attributes ?& t.required;
  IF bad_id IS NOT NULL THEN
    SELECT format('type %s requires attribute%s: %s', n.type, CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
                  string_agg(r, ', ' ORDER BY r)) INTO msg
      FROM new_rows n JOIN cmdb.type_required t ON t.type = n.type, unnest(t.required) r
     WHERE n.id = bad_id AND NOT n.attributes ? r GROUP BY n.type;
    RAISE EXCEPTION '%', msg USING ERRCODE = '23502';
  END IF;

  INSERT INTO cmdb.history (entity, op, ci_id, field, old, new)
  SELECT 'ci', x.op, x.id, x.field, x.old, x.new FROM (
    SELECT n.id, f.op, f.field, f.old, f.new, f.ord
      FROM old_rows o JOIN new_rows n ON n.id = o.id AND n.updated_at = now()
     CROSS JOIN LATERAL (VALUES
       (1, 'update', 'type', to_jsonb(o.type), to_jsonb(n.type)),
       (2, 'update', 'name', to_jsonb(o.name), to_jsonb(n.name)),
       (3, 'update', 'description', to_jsonb(o.description), to_jsonb(n.description)),
       (4, CASE n.status WHEN 'retired' THEN 'retire' WHEN 'disposed' THEN 'dispose' ELSE 'status' END,
           'status', to_jsonb(o.status), to_jsonb(n.status)),
       (5, 'update', 'criticality', to_jsonb(o.criticality), to_jsonb(n.criticality)),
       (6, 'update', 'owner', to_jsonb(o.owner), to_jsonb(n.owner))) f(ord, op, field, old, new)
     WHERE f.old IS DISTINCT FROM f.new
    UNION ALL
    SELECT n.id, 'update', 'attributes.' || k.key, o.attributes -> k.key, n.attributes -> k.key, 7
      FROM old_rows o JOIN new_rows n ON n.id = o.id AND n.updated_at = now()
     CROSS JOIN LATERAL (SELECT jsonb_object_keys(o.attributes) UNION SELECT jsonb_object_keys(n.attributes)) k(key)
     WHERE o.attributes IS DISTINCT FROM n.attributes
       AND (o.attributes -> k.key) IS DISTINCT FROM (n.attributes -> k.key)
  ) x ORDER BY x.id, x.ord, x.field;

  -- the current version ends now; one that began in this transaction is replaced
  UPDATE cmdb.ci_version v SET valid = tstzrange(lower(v.valid), now())
    FROM old_rows o JOIN new_rows n ON n.id = o.id
   WHERE n.updated_at = now() AND cmdb.ci_recorded_change(o, n) AND v.ci_id = n.id AND upper_inf(v.valid) AND lower(v.valid) < now();
  DELETE FROM cmdb.ci_version v USING old_rows o JOIN new_rows n ON n.id = o.id
   WHERE n.updated_at = now() AND cmdb.ci_recorded_change(o, n) AND v.ci_id = n.id AND upper_inf(v.valid);
  INSERT INTO cmdb.ci_version (ci_id, valid, type, name, description, status, criticality, owner, attributes)
  SELECT n.id, tstzrange(now(), NULL), n.type, n.name, n.description, n.status, n.criticality, n.owner, n.attributes
    FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.updated_at = now() AND cmdb.ci_recorded_change(o, n);
  RETURN NULL;
END $$;
CREATE TRIGGER ci_changed AFTER UPDATE ON cmdb.ci
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_changed();

-- Identities and relationships are never deleted either: closing the
-- validity range ends them, so past states stay readable.
CREATE TRIGGER ci_identity_no_delete BEFORE DELETE OR TRUNCATE ON cmdb.ci_identity
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.no_delete();
CREATE TRIGGER rel_no_delete BEFORE DELETE OR TRUNCATE ON cmdb.rel
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.no_delete();

CREATE FUNCTION cmdb.ci_identity_added() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
BEGIN
  INSERT INTO cmdb.history (entity, op, ci_id, field, new)
  SELECT 'identity', 'identity_add', a.ci_id, a.kind, to_jsonb(a.value) FROM added a ORDER BY a.id;
  RETURN NULL;
END $$;
CREATE TRIGGER ci_identity_added AFTER INSERT ON cmdb.ci_identity
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_identity_added();

CREATE FUNCTION cmdb.ci_identity_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  bad record;
BEGIN
  SELECT min(o.id) FILTER (WHERE NOT upper_inf(o.valid)) AS ended,
         min(o.id) FILTER (WHERE (n.ci_id, n.kind, n.value, lower(n.valid)) IS DISTINCT FROM (o.ci_id, o.kind, o.value, lower(o.valid))) AS edited
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
CREATE TRIGGER ci_identity_changed AFTER UPDATE ON cmdb.ci_identity
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cmdb.ci_identity_changed();

CREATE FUNCTION cmdb.rel_added() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
BEGIN
  INSERT INTO cmdb.history (entity, op, ci_id, other_ci_id, rel_id, field, new)
  SELECT 'rel', 'relate', a.source_id, a.target_id, a.id, a.type,
         jsonb_build_object('type', a.type, 'source', a.source_id, 'target', a.target_id, 'attributes', a.attributes)
    FROM added a ORDER BY a.id;
  RETURN NULL;
END $$;
CREATE TRIGGER rel_added AFTER INSERT ON cmdb.rel
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cmdb.rel_added();

CREATE FUNCTION cmdb.rel_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cmdb, pg_temp AS $$
DECLARE
  bad record;
BEGIN
  SELECT min(o.id) FILTER (WHERE NOT upper_inf(o.valid)) AS ended,
         min(o.id) FILTER (WHERE (n.type, n.source_id, n.target_id, lower(n.valid)) IS DISTINCT FROM (o.type, o.source_id, o.target_id, lower(o.valid))) AS edited
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
CREATE TRIGGER rel_changed AFTER UPDATE ON cmdb.rel
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cmdb.rel_changed();

CREATE FUNCTION cmdb.type_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = cmdb, pg_temp AS $$
BEGIN
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
CREATE TRIGGER ci_type_guard BEFORE INSERT OR UPDATE ON cmdb.ci_type
  FOR EACH ROW EXECUTE FUNCTION cmdb.type_guard();
CREATE TRIGGER ci_type_no_delete BEFORE DELETE OR TRUNCATE ON cmdb.ci_type
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb.no_delete();

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

-- Verifies the whole history chain in one pass. Returns the number of rows
-- checked and the head; when the chain is broken, also the first broken
-- place: the row range of the block concerned (first_id..last_id) and what
-- is wrong with it.
CREATE FUNCTION cmdb.audit_chain(OUT checked bigint, OUT blocks bigint, OUT broken_block bigint,
                                 OUT broken_first bigint, OUT broken_last bigint, OUT problem text,
                                 OUT head_block bigint, OUT head_hash text)
LANGUAGE plpgsql STABLE SET search_path = cmdb, pg_temp AS $$
DECLARE
  head cmdb.history_head;
  zero bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
  last_b cmdb.history_block;
  orphan bigint;
BEGIN
  SELECT * INTO head FROM cmdb.history_head;
  head_block := head.last_block;
  head_hash := encode(head.last_hash, 'hex');
  SELECT count(*) INTO checked FROM cmdb.history;
  SELECT count(*) INTO blocks FROM cmdb.history_block;

  -- each block against its rows (recomputed from their content) and its
  -- predecessor; one aggregate pass finds the first broken block
  WITH b AS (
    SELECT x.*, lag(x.hash) OVER w AS prev_block_hash, lag(x.id) OVER w AS prev_block_id,
           lag(x.last_id) OVER w AS prev_last_id
      FROM cmdb.history_block x WINDOW w AS (ORDER BY x.id)
  ), r AS (
    SELECT b.id, count(h.id) AS n,
           sha256(string_agg(cmdb.history_hash(h.id, h.at, h.txid, h.db_user, h.os_user, h.source,
                             h.change_ref, h.reason, h.entity, h.op, h.ci_id, h.other_ci_id, h.rel_id,
                             h.field, h.old, h.new), ''::bytea ORDER BY h.id)) AS digest
      FROM b LEFT JOIN cmdb.history h ON h.id BETWEEN b.first_id AND b.last_id
     GROUP BY b.id
  ), verdict AS (
    SELECT b.id, b.first_id, b.last_id,
           CASE
             WHEN b.id <> coalesce(b.prev_block_id, 0) + 1 THEN
               format('block %s follows block %s: the blocks between were removed', b.id, coalesce(b.prev_block_id, 0))
             WHEN b.prev_hash IS DISTINCT FROM coalesce(b.prev_block_hash, zero) THEN
               'its link to the previous block is broken (the previous block was altered)'
             WHEN b.hash IS DISTINCT FROM cmdb.block_hash(b.prev_hash, b.id, b.first_id, b.last_id, b.rows, b.digest) THEN
               'the block record itself was altered'
             WHEN b.first_id <= coalesce(b.prev_last_id, 0) THEN
               'its rows overlap the previous block'
             WHEN r.n <> b.rows THEN
               format('it held %s rows when written and holds %s now (rows were removed or inserted)', b.rows, r.n)
             WHEN r.digest IS DISTINCT FROM b.digest THEN
               'a row was altered after it was written (its content no longer matches the block digest)'
           END AS what
      FROM b JOIN r ON r.id = b.id
  )
  SELECT v.id, v.first_id, v.last_id, v.what INTO broken_block, broken_first, broken_last, problem
    FROM verdict v WHERE v.id = (SELECT min(x.id) FROM verdict x WHERE x.what IS NOT NULL);
  IF broken_block IS NOT NULL THEN
    RETURN;
  END IF;

  -- rows outside every block were written behind the triggers' back
  IF checked <> (SELECT coalesce(sum(rows), 0) FROM cmdb.history_block) THEN
    SELECT min(h.id) INTO orphan FROM cmdb.history h
     WHERE NOT EXISTS (SELECT FROM cmdb.history_block b WHERE h.id BETWEEN b.first_id AND b.last_id);
    broken_block := 0;
    broken_first := orphan;
    broken_last := orphan;
    problem := 'this row belongs to no block: it was inserted behind the triggers'' back';
    RETURN;
  END IF;

  -- the head must name the last block
  SELECT * INTO last_b FROM cmdb.history_block ORDER BY id DESC LIMIT 1;
  IF coalesce(last_b.id, 0) <> head.last_block OR coalesce(last_b.hash, zero) <> head.last_hash
     OR checked <> head.rows THEN
    broken_block := coalesce(last_b.id, 0);
    broken_first := last_b.first_id;
    broken_last := last_b.last_id;
    problem := format('the chain ends at block %s with %s rows, but its head records block %s with %s rows (the end was cut off)',
                      coalesce(last_b.id, 0), checked, head.last_block, head.rows);
  END IF;
END $$;

-- ---------------------------------------------------------------------------
-- Rights. Writers change CIs, identities, relationships and types through
-- DML (the triggers keep history) and never touch history or the schema.
-- Readers read. Nobody holds UPDATE, DELETE or TRUNCATE on history.

GRANT SELECT ON ALL TABLES IN SCHEMA cmdb TO cmdb_reader, cmdb_writer;
GRANT INSERT, UPDATE ON cmdb.ci, cmdb.ci_identity, cmdb.rel, cmdb.ci_type, cmdb.rel_type TO cmdb_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA cmdb TO cmdb_writer, cmdb_reader;
REVOKE EXECUTE ON FUNCTION cmdb.history_append, cmdb.history_lock, cmdb.history_seal, cmdb.history_flush
  FROM cmdb_writer, cmdb_reader;
REVOKE UPDATE, DELETE, TRUNCATE ON cmdb.history, cmdb.history_block FROM cmdb_owner;
REVOKE DELETE, TRUNCATE ON cmdb.history_head FROM cmdb_owner;
