-- pgpush schema, last part: the first daily partitions of push.deliveries
-- (today's and partitions_ahead_days more, by push.maintain_partitions()),
-- made with the schema so that no dispatcher ever starts writing into the
-- default partition of a new database. Last, after the grants: partitions
-- carry no grants of their own, as when maintenance makes them later.
SELECT push.maintain_partitions();
