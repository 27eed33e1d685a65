-- The dashboard store: a cache of the synced inventory and its computed edges, plus history and
-- drafts. Everything but `changes`, `drafts` and `sync_runs` can be rebuilt from the source.

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    source TEXT NOT NULL,
    objects INTEGER NOT NULL,
    workloads INTEGER NOT NULL,
    edges INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    -- JSON array of accord_api::Diagnostic
    diagnostics TEXT NOT NULL
);

CREATE TABLE inventory_objects (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    hash INTEGER NOT NULL,
    origin TEXT NOT NULL,
    -- the object as JSON
    object TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);

CREATE TABLE workloads (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    -- accord_api::Node as JSON
    node TEXT NOT NULL,
    -- policies, intents, declared callers, labels as JSON
    detail TEXT NOT NULL
);

CREATE TABLE edges (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    ports TEXT NOT NULL,
    declared_ports TEXT NOT NULL,
    declared INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    -- accord_api::EdgeExplanation as JSON
    explanation TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_changed TEXT NOT NULL,
    PRIMARY KEY (source, target)
);
CREATE INDEX edges_by_target ON edges (target);

CREATE TABLE drift_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    workload TEXT,
    -- accord_api::DriftItem as JSON
    item TEXT NOT NULL
);

CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES sync_runs (id),
    time TEXT NOT NULL,
    workload TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    change TEXT NOT NULL,
    state_before TEXT,
    state_after TEXT,
    -- JSON array of "Kind ns/name"
    changed_by TEXT NOT NULL
);
CREATE INDEX changes_by_source ON changes (source, id);
CREATE INDEX changes_by_target ON changes (target, id);

CREATE TABLE drafts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    yaml TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
