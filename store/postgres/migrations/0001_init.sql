-- pollrelay's tables, in the schema the connection's search_path names.
--
-- Every id, name, state, object and body is bytea: stored byte for byte
-- (NUL and invalid UTF-8 included) and compared bytewise, the order the
-- diff's compact index searches in. text would refuse such bytes and sort
-- under a collation; jsonb would reorder an object's keys.
--
-- Times a query compares are bigint nanoseconds (store.DueNanos) where the
-- nanoseconds matter, timestamptz where microseconds do.

-- event_seq orders events as the store wrote them: the deliveries of
-- every (subscription, source, id) follow it, not the clock in the event's
-- id, so a poll by a member whose clock lags cannot reorder an item's
-- events.
CREATE SEQUENCE event_seq;

-- items: what a source tracks. head holds the rest of the record (since,
-- history, pending, stalled rules) in the compact encoding of
-- itemcodec.go; object is apart because a poll reads every head but only
-- the objects of the few items that change.
CREATE TABLE items (
    source bytea NOT NULL,
    id     bytea NOT NULL,
    state  bytea NOT NULL,
    head   bytea NOT NULL,
    object bytea,
    PRIMARY KEY (source, id)
);

CREATE TABLE source_state (
    source bytea PRIMARY KEY,
    body   bytea NOT NULL -- store.SourceState as JSON
);

-- events: the log. The columns beside body are what fan-out reads
-- (EventMeta) without the states and object; they also keep the id,
-- source, item id and type byte-exact where JSON cannot.
CREATE TABLE events (
    id         bytea PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT nextval('event_seq'),
    source     bytea NOT NULL,
    item_id    bytea NOT NULL,
    type       bytea NOT NULL,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL,
    created_ns integer NOT NULL, -- the nanoseconds below created_at's microsecond
    body       bytea NOT NULL     -- event.Event as JSON
);
CREATE INDEX events_created ON events (created_at);

-- outbox: events not yet fanned out, in event id (creation) order. The
-- order of deliveries does not depend on it: a delivery takes its
-- event's seq.
CREATE TABLE outbox (
    event_id bytea PRIMARY KEY
);

-- deliveries: one event on its way to one subscription. due is when a
-- queued delivery is due (unix nanoseconds; NULL when not queued), the
-- schedule Due reads. resource is the delivery's source and item id, and
-- ordered says it holds its place in that resource's order, which
-- (seq, event_id) gives: seq is its event's, 0 for a delivery whose event
-- is not logged (none that pollrelay writes). claim_token and claim_until
-- are for deliveries claimed by one member of several.
CREATE TABLE deliveries (
    sub         bytea NOT NULL,
    event_id    bytea NOT NULL,
    seq         bigint NOT NULL,
    state       text NOT NULL,
    due         bigint,
    resource    bytea,
    ordered     boolean NOT NULL,
    body        bytea NOT NULL, -- store.Delivery as JSON
    claim_token bigint,
    claim_until timestamptz,
    PRIMARY KEY (sub, event_id)
);
CREATE INDEX deliveries_due ON deliveries (sub, due, event_id) WHERE due IS NOT NULL;
CREATE INDEX deliveries_resource ON deliveries (sub, resource, seq) WHERE ordered;
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    event_id bytea NOT NULL,
    sub      bytea NOT NULL,
    n        integer NOT NULL,
    body     bytea NOT NULL, -- store.Attempt as JSON, without the response body
    response bytea NOT NULL, -- the receiver's response body as it came
    PRIMARY KEY (event_id, sub, n)
);

CREATE TABLE watches (
    source bytea NOT NULL,
    id     bytea NOT NULL,
    body   bytea NOT NULL, -- store.Watch as JSON
    PRIMARY KEY (source, id)
);

-- watch_ended: watches that ended, so neither ids: nor watch_from adds
-- them again.
CREATE TABLE watch_ended (
    source   bytea NOT NULL,
    id       bytea NOT NULL,
    ended_at timestamptz NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE api_subscriptions (
    id   bytea PRIMARY KEY,
    body bytea NOT NULL -- store.SubscriptionRecord as JSON
);

CREATE TABLE sub_state (
    sub  bytea PRIMARY KEY,
    body bytea NOT NULL -- store.SubState as JSON
);

CREATE TABLE quarantine (
    id   bytea PRIMARY KEY,
    kind text NOT NULL,
    body bytea NOT NULL -- store.Quarantined as JSON
);

CREATE TABLE histograms (
    source bytea NOT NULL,
    state  bytea NOT NULL,
    body   bytea NOT NULL, -- opaque to the store
    PRIMARY KEY (source, state)
);

-- leases: the fencing row of each unit of polling work (a list source, a
-- shard of a watch source). token changes with every change of holder and
-- with nothing else: a poll's transactions lock the row FOR SHARE (see
-- fence), so renewals must write a row of their own, never this one, or
-- they would wait behind every long poll.
CREATE TABLE leases (
    name   bytea PRIMARY KEY,
    token  bigint NOT NULL,
    holder bytea
);

-- fence aborts the calling transaction unless lease is held under want,
-- and keeps the token from changing until that transaction ends: a
-- holder that was paused or cut off past its lease cannot commit. The
-- error's SQLSTATE, PRF01, is what the store reads as store.ErrFenced.
CREATE FUNCTION fence(lease bytea, want bigint) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM 1 FROM leases WHERE name = lease AND token = want FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease % is not held under token %', encode(lease, 'escape'), want
            USING ERRCODE = 'PRF01';
    END IF;
END
$$;
