-- The cluster's members and who holds each lease (see cluster.go). Every
-- expiry is in the database's clock, clock_timestamp() (now() is the
-- transaction's start), so members whose clocks disagree still agree on
-- who holds what.

-- members: one row per process of a replica. process is a random id of
-- the process, so a pod restarted under the same name is a new member and
-- inherits none of its predecessor's leases. A member's leases last as
-- long as its row: one heartbeat renews them all, however many they are.
-- version digests the member's rows in member_configs, which the others
-- read again only when it changes.
CREATE TABLE members (
    member     text NOT NULL,
    process    text NOT NULL,
    version    text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (member, process)
);

-- member_configs: a hash of each source's config as a member runs it.
-- During a rolling config change a lease goes only to members whose hash
-- matches its holder's.
CREATE TABLE member_configs (
    member  text NOT NULL,
    process text NOT NULL,
    source  bytea NOT NULL,
    config  text NOT NULL,
    PRIMARY KEY (member, process, source),
    FOREIGN KEY (member, process) REFERENCES members ON DELETE CASCADE
);

-- lease_holds: the holder of each lease. It is apart from leases, the
-- token row a poll's transactions lock FOR SHARE, so that nothing but a
-- change of holder ever writes that row, and a renewal (of members) never
-- waits behind a long poll. A lease is held while released is NULL and
-- its holder's members row has not expired. The holder stays after a
-- release (released says why) or an expiry: the next holder counts the
-- handoff by it.
CREATE TABLE lease_holds (
    name     bytea PRIMARY KEY,
    source   bytea NOT NULL,
    member   text NOT NULL,
    process  text NOT NULL,
    config   text NOT NULL,
    released text
);
CREATE INDEX lease_holds_holder ON lease_holds (member, process);

-- live_member reports whether (m, p) is a member whose heartbeat has not
-- expired.
CREATE FUNCTION live_member(m text, p text) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT EXISTS (SELECT 1 FROM members WHERE member = m AND process = p AND expires_at > clock_timestamp())
$$;

-- acquire_lease makes the live member (m, p) the holder of lease if it is
-- free or its holder's heartbeat expired, and its token is still expect;
-- it returns the new token, NULL when it is not. The token's change waits
-- for the polls that hold the old token FOR SHARE to end, as long as the
-- caller's lock_timeout lets it.
CREATE FUNCTION acquire_lease(lease bytea, src bytea, m text, p text, cfg text, expect bigint)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    h lease_holds%ROWTYPE;
    t bigint;
BEGIN
    INSERT INTO leases (name, token) VALUES (lease, 0) ON CONFLICT DO NOTHING;
    INSERT INTO lease_holds (name, source, member, process, config, released)
        VALUES (lease, src, '', '', '', 'released') ON CONFLICT DO NOTHING;
    SELECT * INTO h FROM lease_holds WHERE name = lease FOR UPDATE;
    IF h.released IS NULL AND live_member(h.member, h.process) THEN
        RETURN NULL;
    END IF;
    UPDATE leases SET token = token + 1, holder = convert_to(m || '/' || p, 'UTF8')
        WHERE name = lease AND token = expect RETURNING token INTO t;
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE lease_holds SET source = src, member = m, process = p, config = cfg, released = NULL
        WHERE name = lease;
    RETURN t;
END
$$;

-- acquire_leases is acquire_lease over arrays, in one round trip, for a
-- live member only: it returns the leases acquired with their tokens. A
-- lease whose token row a poll still holds past wait is skipped (and
-- tried again later), so one slow poll cannot hold up the rest.
CREATE FUNCTION acquire_leases(names bytea[], srcs bytea[], cfgs text[], expects bigint[], m text, p text, wait interval)
RETURNS TABLE (lease bytea, token bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    t bigint;
BEGIN
    IF NOT live_member(m, p) THEN
        RETURN;
    END IF;
    PERFORM set_config('lock_timeout', (extract(epoch FROM wait) * 1000)::bigint::text, true);
    FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
        BEGIN
            t := acquire_lease(names[i], srcs[i], m, p, cfgs[i], expects[i]);
        EXCEPTION WHEN lock_not_available THEN
            t := NULL;
        END;
        IF t IS NOT NULL THEN
            lease := names[i];
            token := t;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
