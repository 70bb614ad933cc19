-- (type, ordinal k) -> CI id, for the relationship generator; and the
-- number of CIs of each type.
CREATE TABLE bench.ci_map AS
  SELECT type, (row_number() OVER (PARTITION BY type ORDER BY id) - 1)::bigint AS k, id
  FROM cmdb.ci;
ALTER TABLE bench.ci_map ADD PRIMARY KEY (type, k);
ANALYZE bench.ci_map;
CREATE TABLE bench.type_count AS SELECT type, count(*) AS n FROM bench.ci_map GROUP BY type;
