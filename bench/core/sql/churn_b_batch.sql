-- Churn, round B (after the as-of time), CI ids :lo .. :hi, one
-- transaction: another host in ten is patched (a third of those live ones
-- go into maintenance, planned ones go live), one application in 200 is
-- retired with a reason, and one connects_to relationship in 100 ends.
BEGIN;
UPDATE cmdb.ci
   SET attributes = attributes || jsonb_build_object('patch_level', '2026-b', 'owner_group', 'ops-' || (id % 7)),
       status = CASE WHEN status = 'live' AND id % 3 = 0 THEN 'maintenance'
                     WHEN status = 'planned' THEN 'live' ELSE status END,
       last_seen = now()
 WHERE id BETWEEN :lo AND :hi AND type = 'host' AND abs(hashint8(id)::bigint) % 10 = 1;
SELECT set_config('cmdb.reason', 'decommissioned (benchmark churn)', true) \g /dev/null
UPDATE cmdb.ci SET status = 'retired'
 WHERE id BETWEEN :lo AND :hi AND type = 'application' AND abs(hashint8(id)::bigint) % 200 = 0
   AND status IN ('planned', 'live', 'maintenance');
UPDATE cmdb.rel SET valid = tstzrange(lower(valid), now())
 WHERE source_id BETWEEN :lo AND :hi AND type = 'connects_to' AND id % 100 = 0 AND upper_inf(valid);
COMMIT;
