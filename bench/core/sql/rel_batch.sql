-- One batch of relationships n = :lo .. :hi of one kind (one transaction).
-- Source ordinal sk = n % :ns, round j = n / :ns; the target ordinal is
-- (sk * :mul + j * :step) % :nd, or for a type related to itself
-- (sk + 1 + (j * :step) % (:nd - 1)) % :nd, which is never sk. A pair that
-- exists already (rare: step not coprime) is skipped by the unique index.
INSERT INTO cmdb.rel (type, source_id, target_id)
SELECT :'rtype', s.id, d.id
FROM generate_series(:lo::bigint, :hi::bigint) n
CROSS JOIN LATERAL (SELECT n % :ns AS sk, n / :ns AS j) x
JOIN bench.ci_map s ON s.type = :'stype' AND s.k = x.sk
JOIN bench.ci_map d ON d.type = :'dtype'
 AND d.k = CASE WHEN :'stype' = :'dtype' THEN (x.sk + 1 + (x.j * :step) % (:nd - 1)) % :nd
                ELSE (x.sk * :mul + x.j * :step) % :nd END
ORDER BY n
ON CONFLICT (type, source_id, target_id) WHERE upper_inf(valid) DO NOTHING;
