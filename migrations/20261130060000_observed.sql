-- Observed traffic (Hubble flows): aggregates per observation key, never raw flows, and the
-- observation window's coverage. Times are nanoseconds since the Unix epoch. Parties are written
-- as Accord prints them: `ns/name[Kind]`, `external:<ip or DNS name>`, `host`, `unresolved:<ip>`.

CREATE TABLE observations (
    class TEXT NOT NULL,
    client TEXT NOT NULL,
    server TEXT NOT NULL,
    protocol TEXT NOT NULL,
    port INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    forwarded INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    audit INTEGER NOT NULL,
    PRIMARY KEY (class, client, server, protocol, port)
) WITHOUT ROWID;

CREATE INDEX observations_by_server ON observations (server, last_seen);
CREATE INDEX observations_by_last_seen ON observations (last_seen);

-- When the collector was connected (merged intervals).
CREATE TABLE observation_coverage (
    connected_from INTEGER PRIMARY KEY,
    connected_to INTEGER NOT NULL
);

-- Events Hubble reported lost, per minute.
CREATE TABLE observation_lost (
    minute INTEGER PRIMARY KEY,
    count INTEGER NOT NULL
);

-- The latest flow time stored: where a reconnecting collector resumes (`since`).
CREATE TABLE observation_resume (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    latest INTEGER NOT NULL
);
