-- Helper objects of the benchmark, outside the cmdb schema: the mapping
-- from (type, ordinal) to CI id that the relationship generator joins on,
-- and the run's metadata. Run as the embedded server's superuser.
CREATE SCHEMA bench;
CREATE TABLE bench.meta (key text PRIMARY KEY, value text NOT NULL);
