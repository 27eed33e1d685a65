-- Drift triage: when each cause (a drift item's key) was first seen, and acknowledgements.
-- An acknowledgement holds for the item's fingerprint: when the cause changes, it lapses and
-- the sync pass deletes it.

CREATE TABLE drift_seen (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    first_seen TEXT NOT NULL
);

CREATE TABLE drift_acks (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    reason TEXT NOT NULL,
    acked_at TEXT NOT NULL
);
