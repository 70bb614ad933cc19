-- Churn, round A (before the as-of time): one host in ten among CI ids
-- :lo .. :hi is patched and seen again (one transaction).
UPDATE cmdb.ci
   SET attributes = attributes || jsonb_build_object('patch_level', '2026-a', 'kernel', '6.1.' || (id % 90)),
       last_seen = now()
 WHERE id BETWEEN :lo AND :hi AND type = 'host' AND abs(hashint8(id)::bigint) % 10 = 0;
