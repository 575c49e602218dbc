-- sequences: the named counters that hand out ids never given before (a
-- vendor-shaped API's integer ids; see store.SubscriptionTxn). last is
-- the value a counter gave last; a counter is a row from its first value,
-- 1. A row, not a PostgreSQL SEQUENCE per name: a counter is taken inside
-- the transaction that uses its value (rolled back with it, a conflict
-- redone like any other write), names come at run time, and PutSequence
-- sets one moved from another store.
CREATE TABLE sequences (
    name bytea PRIMARY KEY,
    last bigint NOT NULL
);
