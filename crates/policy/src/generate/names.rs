//! Object names: what a generated policy is called (as upstream names it, from the workload's own
//! name), and a valid name when upstream's would be refused by the API server.

use crate::identity::WorkloadId;

/// The base of a generated policy's name: `name` or `name-kind`, as identities spell them;
/// [`object_name`] turns the identity's `_` back into the `.` of the workload's own name
/// (identities never hold a dot, object names never an underscore), so a Deployment `api.v2`
/// gets `api.v2-deployment-access`.
pub fn policy_base_name(id: &WorkloadId) -> String {
    match &id.kind {
        None => id.name.clone(),
        Some(kind) => format!("{}-{}", id.name, kind.to_lowercase()),
    }
}

/// The prefix of the default-deny policy a ProtectedService creates.
pub const DEFAULT_DENY_PREFIX: &str = "default-deny-";

/// The longest name the API server accepts for a NetworkPolicy (a DNS-1123 subdomain).
pub const MAX_OBJECT_NAME: usize = 253;

/// Whether `name` is a DNS-1123 subdomain, the form the API server requires of NetworkPolicy and
/// custom resource names: at most 253 characters, dot-separated parts of lowercase letters,
/// digits and `-`, each starting and ending with a letter or digit.
pub fn is_valid_object_name(name: &str) -> bool {
    name.len() <= MAX_OBJECT_NAME
        && name.split('.').all(|part| {
            let b = part.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.first().is_some_and(alnum)
                && b.last().is_some_and(alnum)
                && b.iter().all(|c| alnum(c) || *c == b'-')
        })
}

/// The name of an object generated for a workload identity: `prefix + base + suffix`, where the
/// base is an identity-derived name (`name` or `name-kind`) whose `_` become `.` again.
///
/// When that is a valid name (always so for workloads whose own names are valid, unless the
/// name is too long) it is used as is, exactly as the upstream operator names it. Otherwise
/// (names over 253 characters, or override annotations that are no valid name) the base is
/// lowercased, stripped of what a name cannot hold, shortened and followed by `-` and six hex
/// characters of its MD5, so that the API server accepts it and distinct bases stay distinct;
/// upstream would write an object the API server rejects.
pub fn object_name(prefix: &str, base: &str, suffix: &str) -> String {
    let dotted = base.replace('_', ".");
    let plain = format!("{prefix}{dotted}{suffix}");
    if is_valid_object_name(&plain) {
        return plain;
    }
    let cleaned: String = dotted
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let parts: Vec<&str> = cleaned
        .split('.')
        .map(|p| p.trim_matches('-'))
        .filter(|p| !p.is_empty())
        .collect();
    let mut kept = parts.join(".");
    let hash = crate::identity::md5_hex(base, 6);
    // prefix + kept + "-" + hash + suffix must fit.
    let budget = MAX_OBJECT_NAME.saturating_sub(prefix.len() + suffix.len() + 1 + hash.len());
    kept.truncate(budget);
    let kept = kept.trim_end_matches(['-', '.']);
    if kept.is_empty() {
        format!("{prefix}{hash}{suffix}")
    } else {
        format!("{prefix}{kept}-{hash}{suffix}")
    }
}
