//! What-if: the access a draft of ClientIntents would change, evaluated incrementally.
//!
//! Before is the live cluster as it is (every policy, hand-written ones included). After is the
//! live cluster once Accord's operator applied the draft: the draft's ClientIntents replace those
//! of the same namespace and name (or are added); for the *subjects* the draft touches (its
//! clients and targets, and those of the intents it replaces) the generated policies replace
//! their current Accord-labelled ones and the generated labels are set on their pods. Every other
//! policy stays.
//!
//! [`apply`] builds the after inventory (generating over a small inventory holding only the
//! intents that concern the subjects, as the operator does) and the set of *touched* workloads:
//! the subjects' workloads and every workload a removed or added policy selects. Only pairs with
//! a touched end can change, so [`pair_changes`] evaluates those alone ([`analyze_scoped`]) and
//! compares them with the live analysis through [`changes`].
//!
//! Size: about half of it is the property test that checks the incremental what-if against the
//! full analysis, kept beside the code it checks.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::changes::{PairChange, PairFacts, changes};
use serde::{Deserialize, Serialize};

use super::{EdgeReport, EdgeState, Estate, Index, analyze, edge_parts};
use crate::diagnostic::Diagnostic;
use crate::evaluate::{Evaluator, Patch, PolicyRef, Prepared};
use crate::generate::{GenerateOptions, generate};
use crate::identity::{WorkloadId, formatted};
use crate::intents::{ClientIntents, TargetKind};
use crate::inventory::{Inventory, Namespace, Pod, PolicyObject};
use crate::labels;
use crate::objects::{Labels, NetworkPolicy, ObjectMeta};

/// `(namespace, name)` of a subject: a client or target workload, or a Service target.
pub type Subject = (String, String);

/// How [`apply`] generates the subjects' policies and labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Over the intents that concern the subjects only (what the operator does; fast).
    Subjects,
    /// Over the whole after inventory (the slow reference).
    Full,
}

/// The labels the draft changes on one workload's pods (its first pod's, when they differ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelChange {
    pub workload: WorkloadId,
    /// Labels set (new, or with another value).
    pub set: Labels,
    /// Labels removed.
    pub removed: Vec<String>,
}

/// A draft applied to the live inventory as the operator would apply it, held as the change
/// (the live inventory is not copied; [`Applied::inventory`] builds the result when needed).
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub subjects: BTreeSet<Subject>,
    /// Workloads whose pairs can change: those of the subjects and those a removed or added
    /// policy selects.
    pub touched: BTreeSet<WorkloadId>,
    /// Generated policies that are new or differ from the live policy of that name.
    pub policies: Vec<NetworkPolicy>,
    /// Live Accord policies that are deleted and not generated again.
    pub removed: Vec<PolicyRef>,
    pub labels: Vec<LabelChange>,
    /// Generation's diagnostics about the draft's own objects.
    pub diagnostics: Vec<Diagnostic>,
    /// The change of the live inventory's policies and pod labels.
    pub patch: Patch,
    /// The draft's ClientIntents.
    pub draft: Vec<ClientIntents>,
    /// (live intents index, draft index): the live ClientIntents each replaces.
    replaced: HashMap<usize, usize>,
    /// Draft indices of the ClientIntents that are added.
    appended: Vec<usize>,
}

impl Applied {
    /// The intents after the draft: the live ones, those of the draft's names replaced, then
    /// the draft's new ones.
    pub fn intents<'a>(&'a self, live: &'a Inventory) -> Vec<&'a ClientIntents> {
        live.intents
            .iter()
            .enumerate()
            .map(|(i, x)| self.replaced.get(&i).map_or(x, |&k| &self.draft[k]))
            .chain(self.appended.iter().map(|&k| &self.draft[k]))
            .collect()
    }

    /// The live policies that stay, then the added ones.
    fn policy_objects<'a>(&'a self, live: &'a Inventory) -> Vec<&'a PolicyObject> {
        let removed: HashSet<usize> = self.patch.removed.iter().copied().collect();
        live.network_policies
            .iter()
            .enumerate()
            .filter(|(i, _)| !removed.contains(i))
            .map(|(_, p)| p)
            .chain(&self.patch.added)
            .collect()
    }

    /// The objects the after analysis reads, without copying the live inventory.
    fn estate<'a>(&'a self, live: &'a Inventory) -> Estate<'a> {
        Estate::changed(
            live,
            self.policy_objects(live),
            self.intents(live),
            self.patch
                .relabelled
                .iter()
                .map(|(i, labels)| (*i, labels))
                .collect(),
        )
    }

    /// Delete the policy `ns`/`name` too (the first of that name among the live policies that
    /// stay, then the added ones), touching the workloads it selected.
    pub fn delete_policy(&mut self, live: &Inventory, ns: &str, name: &str) {
        let named = |p: &PolicyObject| p.policy.namespace() == ns && p.policy.metadata.name == name;
        let gone = if let Some(i) = (0..live.network_policies.len())
            .find(|i| !self.patch.removed.contains(i) && named(&live.network_policies[*i]))
        {
            self.patch.removed.push(i);
            live.network_policies[i].policy.clone()
        } else if let Some(k) = self.patch.added.iter().position(named) {
            self.patch.added.remove(k).policy
        } else {
            return;
        };
        let after: HashMap<usize, &Labels> = self
            .patch
            .relabelled
            .iter()
            .map(|(i, labels)| (*i, labels))
            .collect();
        for (i, pod) in live.pods.iter().enumerate() {
            let labels = after.get(&i).copied().unwrap_or(&pod.metadata.labels);
            if pod.namespace() == ns && gone.spec.pod_selector.matches(labels) {
                self.touched.insert(pod.workload.clone());
            }
        }
    }

    /// The live inventory with the draft applied (a copy: for tests and whole analyses).
    pub fn inventory(&self, live: &Inventory) -> Inventory {
        let mut inv = Inventory {
            intents: self.intents(live).into_iter().cloned().collect(),
            network_policies: self.policy_objects(live).into_iter().cloned().collect(),
            ..live.clone()
        };
        for (i, labels) in &self.patch.relabelled {
            inv.pods[*i].metadata.labels = labels.clone();
        }
        inv
    }
}

/// Whether intents refer to one of `subjects` (as client or target).
fn refers_to(i: &ClientIntents, subjects: &HashSet<(&str, &str)>) -> bool {
    subjects.contains(&(i.namespace.as_str(), i.workload.name.as_str()))
        || i.targets.iter().any(|t| match &t.kind {
            TargetKind::Workload {
                name, namespace, ..
            }
            | TargetKind::Service {
                name, namespace, ..
            } => subjects.contains(&(namespace.as_str(), name.as_str())),
            _ => false,
        })
}

/// The subject a policy named after a workload belongs to (`<base>-access`, `default-deny-…`).
fn subject_of_name(p: &NetworkPolicy) -> Subject {
    let name = &p.metadata.name;
    let base = ["-access", "-ingress", "-egress"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .or_else(|| name.strip_prefix("default-deny-"))
        .unwrap_or(name);
    (p.namespace().to_string(), base.to_string())
}

fn is_accords(p: &NetworkPolicy) -> bool {
    p.metadata.labels.contains_key(labels::NETWORK_POLICY)
        || p.metadata.labels.contains_key(labels::DEFAULT_DENY)
}

/// The fields of a policy that decide what it does; absent and empty rule lists alike.
fn same_spec(a: &NetworkPolicy, b: &NetworkPolicy) -> bool {
    super::same_policy(a, b) && a.metadata.labels == b.metadata.labels
}

/// The live inventory with `draft` applied as the operator would apply it.
pub fn apply(
    live: &Inventory,
    draft: Vec<ClientIntents>,
    opts: &GenerateOptions,
    generation: Generation,
) -> Applied {
    apply_with_subjects(live, draft, &BTreeSet::new(), opts, generation)
}

/// What the operator would change for the subjects of `applied` if the draft kept their
/// current intents: the live ClientIntents the draft replaces, applied with the same subjects.
/// Its changes are what applying the draft fixes anyway (a missing access label restored, a
/// hand-edited generated policy rewritten), to be told apart from the draft's own effect.
pub fn reconcile(live: &Inventory, applied: &Applied, opts: &GenerateOptions) -> Applied {
    let mut replaced: Vec<usize> = applied.replaced.keys().copied().collect();
    replaced.sort_unstable();
    let current: Vec<ClientIntents> = replaced.iter().map(|&i| live.intents[i].clone()).collect();
    apply_with_subjects(live, current, &applied.subjects, opts, Generation::Subjects)
}

impl Applied {
    /// Whether applying changes no policy and no label.
    pub fn is_noop(&self) -> bool {
        self.policies.is_empty() && self.removed.is_empty() && self.labels.is_empty()
    }
}

/// [`apply`], with `extra` subjects treated as touched by the draft too.
pub fn apply_with_subjects(
    live: &Inventory,
    draft: Vec<ClientIntents>,
    extra: &BTreeSet<Subject>,
    opts: &GenerateOptions,
    generation: Generation,
) -> Applied {
    let mut subjects: BTreeSet<Subject> = extra.clone();
    let mut draft_objects: HashSet<String> = HashSet::new();
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    let mut appended: Vec<usize> = Vec::new();
    for (k, d) in draft.iter().enumerate() {
        subjects.extend(d.subjects());
        draft_objects.insert(d.object_name());
        let same = |i: &ClientIntents| i.namespace == d.namespace && i.name == d.name;
        if let Some(j) = appended.iter().position(|&a| same(&draft[a])) {
            subjects.extend(draft[appended[j]].subjects());
            appended[j] = k;
        } else if let Some(i) = live.intents.iter().position(same) {
            match replaced.insert(i, k) {
                Some(earlier) => subjects.extend(draft[earlier].subjects()),
                None => subjects.extend(live.intents[i].subjects()),
            }
        } else {
            appended.push(k);
        }
    }
    let mut applied = Applied {
        draft,
        replaced,
        appended,
        ..Applied::default()
    };
    let intents = applied.intents(live);
    let inv = live;

    // The intents that concern a subject (same-client duplicates among them), and the subjects
    // they refer to.
    let is_subject: HashSet<(&str, &str)> = subjects
        .iter()
        .map(|(ns, name)| (ns.as_str(), name.as_str()))
        .collect();
    let relevant: Vec<&ClientIntents> = intents
        .iter()
        .copied()
        .filter(|i| refers_to(i, &is_subject))
        .collect();
    let generated = match generation {
        Generation::Full => generate(
            &Inventory {
                intents: intents.iter().map(|i| (*i).clone()).collect(),
                ..live.clone()
            },
            opts,
        ),
        Generation::Subjects => {
            let mut referenced = subjects.clone();
            for i in &relevant {
                referenced.extend(i.subjects());
            }
            let mut mini = Inventory {
                intents: relevant.iter().map(|i| (*i).clone()).collect(),
                protected_services: inv.protected_services.clone(),
                ..Inventory::default()
            };
            for s in &referenced {
                if let Some(n) = inv.namespaces.get(&s.0) {
                    mini.namespaces
                        .entry(s.0.clone())
                        .or_insert_with(|| Namespace {
                            name: n.name.clone(),
                            labels: n.labels.clone(),
                            declared: true,
                        });
                }
            }
            let referenced: HashSet<(&str, &str)> = referenced
                .iter()
                .map(|(ns, name)| (ns.as_str(), name.as_str()))
                .collect();
            mini.services = inv
                .services
                .iter()
                .filter(|s| referenced.contains(&(s.namespace(), s.metadata.name.as_str())))
                .cloned()
                .collect();
            mini.pods = inv
                .pods
                .iter()
                .filter(|p| {
                    referenced.contains(&(p.workload.namespace.as_str(), p.workload.name.as_str()))
                })
                .map(|p| Pod {
                    metadata: ObjectMeta {
                        name: p.metadata.name.clone(),
                        namespace: p.metadata.namespace.clone(),
                        ..Default::default()
                    },
                    workload: p.workload.clone(),
                    ..Default::default()
                })
                .collect();
            generate(&mini, opts)
        }
    };
    let diagnostics = generated
        .diagnostics
        .iter()
        .filter(|d| draft_objects.contains(&d.object))
        .cloned()
        .collect();

    // The ownership label values each subject's policies may carry.
    let mut owned: BTreeSet<(String, String)> = BTreeSet::new();
    for i in &relevant {
        let client = (i.namespace.clone(), i.workload.name.clone());
        if subjects.contains(&client) {
            owned.insert((
                i.namespace.clone(),
                formatted(&i.workload.name, &i.namespace, i.workload.kind.as_deref()),
            ));
        }
        for t in &i.targets {
            let Some((name, ns, kind)) = t.workload_ref() else {
                continue;
            };
            if subjects.contains(&(ns.to_string(), name.to_string())) {
                owned.insert((ns.to_string(), formatted(name, ns, kind)));
            }
        }
    }
    let owned_policy = |p: &NetworkPolicy| -> bool {
        let ns = p.namespace().to_string();
        if p.metadata.labels.contains_key(labels::DEFAULT_DENY) {
            return subjects.contains(&subject_of_name(p));
        }
        p.metadata
            .labels
            .get(labels::NETWORK_POLICY)
            .is_some_and(|l| owned.contains(&(ns, l.clone())))
    };
    let wanted: Vec<&NetworkPolicy> = generated
        .policies
        .iter()
        .filter(|p| owned_policy(p))
        .collect();
    let wanted_names: HashSet<(&str, &str)> = wanted
        .iter()
        .map(|p| (p.namespace(), p.metadata.name.as_str()))
        .collect();

    // Live policies that go: Accord's policies of a subject, and any policy of a wanted name.
    let mut gone: Vec<&PolicyObject> = Vec::new();
    let mut patch = Patch::default();
    for (i, obj) in inv.network_policies.iter().enumerate() {
        let p = &obj.policy;
        let named = wanted_names.contains(&(p.namespace(), p.metadata.name.as_str()));
        let ours = is_accords(p) && (owned_policy(p) || subjects.contains(&subject_of_name(p)));
        if named || ours {
            patch.removed.push(i);
            gone.push(obj);
        }
    }
    let live_by_name: HashMap<(&str, &str), &NetworkPolicy> = gone
        .iter()
        .map(|o| {
            (
                (o.policy.namespace(), o.policy.metadata.name.as_str()),
                &o.policy,
            )
        })
        .collect();
    let policies: Vec<NetworkPolicy> = wanted
        .iter()
        .filter(|p| {
            live_by_name
                .get(&(p.namespace(), p.metadata.name.as_str()))
                .is_none_or(|live| !same_spec(live, p))
        })
        .map(|p| (*p).clone())
        .collect();
    let removed: Vec<PolicyRef> = gone
        .iter()
        .filter(|o| {
            !wanted_names.contains(&(o.policy.namespace(), o.policy.metadata.name.as_str()))
        })
        .map(|o| PolicyRef {
            namespace: o.policy.namespace().to_string(),
            name: o.policy.metadata.name.clone(),
        })
        .collect();

    // Workloads selected by a removed policy (before the labels change) or an added one (after).
    let mut touched: BTreeSet<WorkloadId> = BTreeSet::new();
    let select = |touched: &mut BTreeSet<WorkloadId>,
                  pods: &[(usize, &Pod)],
                  p: &NetworkPolicy,
                  after: &HashMap<usize, Labels>| {
        for (i, pod) in pods {
            let labels = after.get(i).unwrap_or(&pod.metadata.labels);
            if pod.namespace() == p.namespace() && p.spec.pod_selector.matches(labels) {
                touched.insert(pod.workload.clone());
            }
        }
    };
    // Pods of the namespaces a removed or added policy is in.
    let policy_namespaces: HashSet<&str> = gone
        .iter()
        .map(|o| o.policy.namespace())
        .chain(wanted.iter().map(|p| p.namespace()))
        .collect();
    let pods_there: Vec<(usize, &Pod)> = inv
        .pods
        .iter()
        .enumerate()
        .filter(|(_, p)| policy_namespaces.contains(p.namespace()))
        .collect();
    let unchanged = HashMap::new();
    for o in &gone {
        select(&mut touched, &pods_there, &o.policy, &unchanged);
    }

    // Labels of the subjects' pods.
    let mut labels_of: BTreeMap<WorkloadId, LabelChange> = BTreeMap::new();
    let mut want_of: HashMap<WorkloadId, Labels> = HashMap::new();
    for (i, pod) in inv.pods.iter().enumerate() {
        if !is_subject.contains(&(pod.workload.namespace.as_str(), pod.workload.name.as_str())) {
            continue;
        }
        touched.insert(pod.workload.clone());
        let want = want_of
            .entry(pod.workload.clone())
            .or_insert_with(|| generated.labels_for(&pod.workload));
        let mut next: Labels = pod
            .metadata
            .labels
            .iter()
            .filter(|(k, _)| !labels::is_managed_pod_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        next.extend(want.iter().map(|(k, v)| (k.clone(), v.clone())));
        if next != pod.metadata.labels && !labels_of.contains_key(&pod.workload) {
            let set: Labels = next
                .iter()
                .filter(|(k, v)| pod.metadata.labels.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let removed = pod
                .metadata
                .labels
                .keys()
                .filter(|k| !next.contains_key(*k))
                .cloned()
                .collect();
            labels_of.insert(
                pod.workload.clone(),
                LabelChange {
                    workload: pod.workload.clone(),
                    set,
                    removed,
                },
            );
        }
        if next != pod.metadata.labels {
            patch.relabelled.push((i, next));
        }
    }

    let after: HashMap<usize, Labels> = patch.relabelled.iter().cloned().collect();
    for p in &wanted {
        select(&mut touched, &pods_there, p, &after);
    }
    patch.added = wanted
        .into_iter()
        .map(|policy| PolicyObject {
            origin: crate::diagnostic::Origin::new("generated", 0),
            policy: policy.clone(),
        })
        .collect();
    drop(intents);
    applied.subjects = subjects;
    applied.touched = touched;
    applied.policies = policies;
    applied.removed = removed;
    applied.labels = labels_of.into_values().collect();
    applied.diagnostics = diagnostics;
    applied.patch = patch;
    applied
}

/// How a what-if change of one pair matters to the developer, in the order the draft page lists
/// them: the riskiest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    /// A call allowed now is denied after (or a declared call stays denied).
    LosesAccess,
    /// A call denied (or absent) now is allowed after.
    NewlyAllowed,
    /// Allowed before and after, on other ports.
    PortsChange,
    /// Allowed before and after; the server becomes isolated for ingress, or stops being.
    Protection,
    /// Same access and isolation; only whether an intent declares the call changes.
    Declaration,
}

impl Impact {
    pub const ALL: [Impact; 5] = [
        Impact::LosesAccess,
        Impact::NewlyAllowed,
        Impact::PortsChange,
        Impact::Protection,
        Impact::Declaration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::LosesAccess => "loses-access",
            Impact::NewlyAllowed => "newly-allowed",
            Impact::PortsChange => "ports-change",
            Impact::Protection => "protection",
            Impact::Declaration => "declaration",
        }
    }

    /// The impact of a pair going from `before` to `after` (`None`: no such pair).
    pub fn of(before: Option<&PairFacts>, after: Option<&PairFacts>) -> Impact {
        let was = before.is_some_and(|b| b.allowed);
        let is = after.is_some_and(|a| a.allowed);
        let isolated = |f: Option<&PairFacts>| {
            f.is_some_and(|f| !matches!(f.state, EdgeState::Open | EdgeState::Unprotected))
        };
        match (was, is) {
            (true, false) => Impact::LosesAccess,
            // A declared call denied after (new, or still blocked); a denied call whose
            // declaration goes changes nothing at runtime.
            (false, false) if after.is_some() => Impact::LosesAccess,
            (false, false) => Impact::Declaration,
            (false, true) => Impact::NewlyAllowed,
            (true, true) => {
                let (b, a) = (before.map(|f| &f.ports), after.map(|f| &f.ports));
                if b != a {
                    Impact::PortsChange
                } else if isolated(before) != isolated(after) {
                    Impact::Protection
                } else {
                    Impact::Declaration
                }
            }
        }
    }
}

/// Why a pair changes, in a developer's words: `client` and `server` are the names to use.
pub fn why(
    before: Option<&PairFacts>,
    after: Option<&PairFacts>,
    client: &str,
    server: &str,
) -> String {
    use EdgeState::*;
    let declared = |f: Option<&PairFacts>| {
        f.is_some_and(|f| matches!(f.state, Enforced | Blocked | Unprotected))
    };
    let (b, a) = (before.map(|f| f.state), after.map(|f| f.state));
    match Impact::of(before, after) {
        Impact::LosesAccess => match (b, a) {
            (Some(Blocked), Some(Blocked)) => format!(
                "{client} declares this call, but the policies isolating {server} would still not let it in."
            ),
            (_, Some(Blocked)) if declared(before) => format!(
                "{client} declares this call, but the policies isolating {server} would no longer let it in."
            ),
            (_, Some(Blocked)) => format!(
                "{client} would declare this call, but the policies isolating {server} would not let it in."
            ),
            _ if declared(before) && !declared(after) => format!(
                "{client} would no longer declare this call, and {server} lets in only the callers whose intents declare it: the call would be denied."
            ),
            (Some(Open), _) => format!(
                "{server} would become protected, and nothing declares this call: it would be denied."
            ),
            _ => "Today only a policy the operator replaces lets this call in; no intent declares it, so it would be denied.".to_string(),
        },
        Impact::NewlyAllowed => match a {
            Some(Enforced) if declared(before) => format!(
                "{client} declares this call, which is denied now; once applied, {server}'s generated policy and {client}'s labels would let it in."
            ),
            Some(Enforced) => format!(
                "{client} would declare this call; {server}'s generated policy would let it in."
            ),
            Some(Unprotected) => format!(
                "{client} would declare this call; {server} is not protected, so nothing stops it."
            ),
            Some(Open) => format!("{server} would no longer be protected: anyone could call it."),
            _ => format!("A policy would let {client} call {server} although nothing declares it."),
        },
        Impact::PortsChange => {
            let (was, is) = (
                before.map_or("", |f| f.ports.as_str()),
                after.map_or("", |f| f.ports.as_str()),
            );
            if declared(after) && !declared(before) {
                format!(
                    "{client} would declare this call; {server} would let it in on {is} ({was} today)."
                )
            } else {
                format!("{client} could still call {server}, on {is} instead of {was}.")
            }
        }
        Impact::Protection => match a {
            Some(Enforced | Undeclared) => format!(
                "{server} would become protected: only the callers its policies admit get in; this call stays allowed."
            ),
            _ => format!(
                "{server} would no longer be protected: this call stays allowed, and so would any other."
            ),
        },
        Impact::Declaration => {
            if !before.is_some_and(|f| f.allowed) {
                format!(
                    "{client} would no longer declare this call, which is denied today; nothing changes at runtime."
                )
            } else if declared(after) {
                format!(
                    "{client} would declare this call; it is already allowed today, so nothing changes at runtime."
                )
            } else {
                format!(
                    "{client} would no longer declare this call, but another policy still lets it in."
                )
            }
        }
    }
}

/// The edges of [`analyze`] whose source or destination is in `scope`.
#[derive(Clone, Debug, Default)]
pub struct Scoped {
    /// Sorted by (source, target).
    pub edges: Vec<EdgeReport>,
    /// Whether the whole analysis of this inventory leaves open edges out.
    pub open_omitted: bool,
}

/// The edges [`analyze`] would report for the pairs with an end in `scope`, at the cost of
/// those pairs (plus one pass over the pods and the policies' compilation).
pub fn analyze_scoped(inv: &Inventory, scope: &BTreeSet<WorkloadId>) -> Scoped {
    scoped_with(&Estate::of(inv), &Evaluator::new(inv), scope)
}

/// [`analyze_scoped`] of `estate`, with `evaluator` evaluating its policies.
fn scoped_with(estate: &Estate, evaluator: &Evaluator, scope: &BTreeSet<WorkloadId>) -> Scoped {
    let index = Index::new(estate.inv());
    let scope: HashSet<&WorkloadId> = scope.iter().collect();
    let parts = edge_parts(estate, evaluator, &index, Some(&scope));
    Scoped {
        edges: parts.edges,
        open_omitted: parts.open_omitted.is_some(),
    }
}

/// The facts of edges, keyed by (source, target) as text.
pub fn facts<'e>(
    edges: impl IntoIterator<Item = &'e EdgeReport>,
) -> impl Iterator<Item = ((String, String), PairFacts)> {
    edges.into_iter().map(|e| {
        (
            (e.source.to_string(), e.target.to_string()),
            PairFacts::of(e),
        )
    })
}

/// The live analysis, as the what-if reads it.
pub trait Live {
    /// Whether the live analysis left open edges out.
    fn open_omitted(&self) -> bool;
    /// The live facts of every pair with an end in `touched` (workload ids as text), or of every
    /// pair when `touched` is `None`.
    fn pairs(&self, touched: Option<&BTreeSet<String>>) -> Vec<((String, String), PairFacts)>;
}

/// A whole [`super::Report`] as the live analysis.
impl Live for super::Report {
    fn open_omitted(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.code == crate::DiagnosticCode::OpenEdgesNotListed)
    }

    fn pairs(&self, touched: Option<&BTreeSet<String>>) -> Vec<((String, String), PairFacts)> {
        facts(&self.edges)
            .filter(|((s, d), _)| touched.is_none_or(|t| t.contains(s) || t.contains(d)))
            .collect()
    }
}

/// What the draft changes: every pair whose facts differ between the live analysis and the
/// analysis of `applied.inventory`. Only pairs with a touched end are evaluated, unless the
/// draft moves the cluster across [`super::OPEN_EDGE_LIMIT`] (then the open edges everywhere
/// appear or vanish, and the whole after inventory is analyzed).
pub fn pair_changes(
    live: &impl Live,
    live_inventory: &Inventory,
    applied: &Applied,
    opts: &GenerateOptions,
) -> Vec<PairChange<(String, String)>> {
    let after = applied.inventory(live_inventory);
    let scoped = analyze_scoped(&after, &applied.touched);
    changes_from(live, live_inventory, applied, opts, scoped)
}

/// [`pair_changes`] with the live inventory's policies compiled beforehand (`prepared`, from
/// `live_inventory`, the inventory [`apply`] was given): only the policies and endpoints the
/// draft touches are compiled again.
pub fn pair_changes_prepared(
    live: &impl Live,
    live_inventory: &Inventory,
    prepared: &Prepared,
    applied: &Applied,
    opts: &GenerateOptions,
) -> Vec<PairChange<(String, String)>> {
    let evaluator = prepared.patched(live_inventory, &applied.patch);
    let estate = applied.estate(live_inventory);
    let scoped = scoped_with(&estate, &evaluator, &applied.touched);
    changes_from(live, live_inventory, applied, opts, scoped)
}

/// About how many bytes [`pair_changes_prepared`] holds for `applied` beyond the live pass:
/// the patched copies of the per-endpoint tables, the after analysis's per-workload maps (both
/// follow the cluster's size) and the pairs of the touched workloads (the draft's size).
pub fn working_bytes(prepared: &Prepared, live: &Inventory, applied: &Applied) -> usize {
    let estate = live.pods.len() * 160
        + live.network_policies.len() * 16
        + live.intents.len() * 16
        + live.services.len() * 32;
    let pairs = applied.touched.len() * prepared.endpoints() * 48;
    prepared.approx_bytes() + estate + pairs
}

fn changes_from(
    live: &impl Live,
    live_inventory: &Inventory,
    applied: &Applied,
    opts: &GenerateOptions,
    scoped: Scoped,
) -> Vec<PairChange<(String, String)>> {
    if scoped.open_omitted != live.open_omitted() {
        let after = analyze(&applied.inventory(live_inventory), opts);
        return changes(live.pairs(None), facts(&after.edges));
    }
    let touched: BTreeSet<String> = applied.touched.iter().map(|w| w.to_string()).collect();
    changes(live.pairs(Some(&touched)), facts(&scoped.edges))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intents::{Target, WorkloadRef};
    use crate::objects::LabelSelector;
    use crate::synthetic::{self, Spec};

    /// SplitMix64, for reproducible random drafts.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % n.max(1) as u64) as usize
        }
    }

    fn target(w: &WorkloadId, service: bool) -> Target {
        let kind = if service {
            TargetKind::Service {
                name: w.name.clone(),
                namespace: w.namespace.clone(),
                ports: Vec::new(),
            }
        } else {
            TargetKind::Workload {
                name: w.name.clone(),
                namespace: w.namespace.clone(),
                kind: None,
                ports: Vec::new(),
                kafka: false,
            }
        };
        Target {
            field: String::new(),
            kind,
        }
    }

    /// A live estate: the synthetic cluster as the operator left it, then drifted: some pods
    /// lost their labels, an Accord policy was deleted, and a hand-written policy isolates a
    /// namespace.
    fn estate(seed: u64) -> Inventory {
        let spec = Spec {
            workloads: 48,
            namespaces: 5,
            calls: 160,
            cross_namespace_percent: 30,
            service_target_percent: 25,
            seed,
        };
        let mut inv = synthetic::applied_inventory(&spec);
        let mut rng = Rng(seed ^ 0x5eed);
        for _ in 0..2 {
            let i = rng.below(inv.pods.len());
            inv.pods[i]
                .metadata
                .labels
                .retain(|k, _| !k.starts_with(labels::ACCESS_PREFIX));
        }
        let i = rng.below(inv.network_policies.len());
        inv.network_policies.remove(i);
        let mut deny = NetworkPolicy::default();
        deny.metadata.name = "hand-written-deny".into();
        deny.metadata.namespace = Some("team-0001".into());
        deny.spec.pod_selector = LabelSelector::default();
        deny.spec.policy_types = vec![crate::objects::PolicyType::Ingress];
        inv.network_policies.push(PolicyObject {
            origin: Default::default(),
            policy: deny,
        });
        inv
    }

    /// A random draft of one of four kinds: add a target, remove a target, replace a client's
    /// intents, a new client.
    fn draft(inv: &Inventory, rng: &mut Rng, kind: usize) -> Vec<ClientIntents> {
        let workloads: Vec<WorkloadId> = inv.workload_ids().into_iter().cloned().collect();
        let pick = |rng: &mut Rng| workloads[rng.below(workloads.len())].clone();
        let existing = || inv.intents[rng_index(inv.intents.len(), kind)].clone();
        match kind % 4 {
            0 => {
                let mut i = existing();
                let w = pick(rng);
                i.targets.push(target(&w, rng.below(3) == 0));
                vec![i]
            }
            1 => {
                let mut i = existing();
                if !i.targets.is_empty() {
                    let k = rng.below(i.targets.len());
                    i.targets.remove(k);
                }
                vec![i]
            }
            2 => {
                let mut i = existing();
                i.targets = (0..1 + rng.below(4))
                    .map(|_| {
                        let w = pick(rng);
                        target(&w, rng.below(2) == 0)
                    })
                    .collect();
                vec![i]
            }
            _ => {
                let declared: BTreeSet<(String, String)> = inv
                    .intents
                    .iter()
                    .map(|i| (i.namespace.clone(), i.workload.name.clone()))
                    .collect();
                let client = (0..workloads.len())
                    .map(|_| pick(rng))
                    .find(|w| !declared.contains(&(w.namespace.clone(), w.name.clone())))
                    .unwrap_or_else(|| pick(rng));
                let targets = (0..1 + rng.below(3))
                    .map(|_| {
                        let w = pick(rng);
                        target(&w, rng.below(3) == 0)
                    })
                    .collect();
                vec![ClientIntents {
                    name: format!("{}-draft", client.name),
                    namespace: client.namespace.clone(),
                    workload: WorkloadRef {
                        name: client.name.clone(),
                        kind: client.kind.clone(),
                    },
                    targets,
                    ..ClientIntents::default()
                }]
            }
        }
    }

    fn rng_index(n: usize, salt: usize) -> usize {
        (salt * 7919 + 13) % n.max(1)
    }

    fn live_labels(inv: &Inventory) -> BTreeMap<String, Labels> {
        inv.pods
            .iter()
            .map(|p| (p.metadata.name.clone(), p.metadata.labels.clone()))
            .collect()
    }

    fn policy_texts(inv: &Inventory) -> BTreeSet<String> {
        inv.network_policies
            .iter()
            .map(|p| serde_json::to_string(&p.policy).unwrap_or_default())
            .collect()
    }

    #[test]
    fn incremental_what_if_equals_the_full_analysis_of_the_applied_draft() {
        let opts = GenerateOptions::default();
        let mut checked = 0;
        let mut changed = 0;
        for seed in 1..=6u64 {
            let live = estate(seed);
            let prepared = Prepared::new(&live);
            let report = crate::drift::analyze_prepared(&live, &opts, &prepared);
            let full = analyze(&live, &opts);
            assert_eq!(
                facts(&report.edges).collect::<Vec<_>>(),
                facts(&full.edges).collect::<Vec<_>>()
            );
            let mut rng = Rng(seed);
            for kind in 0..8 {
                let draft = draft(&live, &mut rng, kind + seed as usize);
                let fast = apply(&live, draft.clone(), &opts, Generation::Subjects);
                let slow = apply(&live, draft, &opts, Generation::Full);
                // Generating over the subjects' intents alone gives what the whole does.
                let (fast_inv, slow_inv) = (fast.inventory(&live), slow.inventory(&live));
                assert_eq!(policy_texts(&fast_inv), policy_texts(&slow_inv));
                assert_eq!(live_labels(&fast_inv), live_labels(&slow_inv));
                let got = pair_changes(&report, &live, &fast, &opts);
                let after = analyze(&slow_inv, &opts);
                let want = changes(facts(&report.edges), facts(&after.edges));
                assert_eq!(got, want, "seed {seed}, draft kind {kind}");
                // The live pass's compiled policies, patched, give the same.
                let patched = pair_changes_prepared(&report, &live, &prepared, &fast, &opts);
                assert_eq!(patched, want, "patched: seed {seed}, draft kind {kind}");
                checked += 1;
                changed += usize::from(!want.is_empty());
            }
        }
        assert_eq!(checked, 48);
        // The drafts do change access, so the comparison is not between empty lists.
        assert!(
            changed >= 40,
            "{changed} of {checked} drafts changed something"
        );
    }

    #[test]
    fn hand_written_policies_stay_and_labels_are_listed() {
        let opts = GenerateOptions::default();
        let live = estate(3);
        let i = live.intents[0].clone();
        let mut draft = i.clone();
        let server = live
            .workload_ids()
            .into_iter()
            .find(|w| w.namespace == "team-0001" && w.name != i.workload.name)
            .cloned()
            .expect("a workload in team-0001");
        draft.targets = vec![target(&server, false)];
        let applied = apply(&live, vec![draft], &opts, Generation::Subjects);
        assert!(
            applied
                .inventory(&live)
                .network_policies
                .iter()
                .any(|p| p.policy.metadata.name == "hand-written-deny")
        );
        assert!(applied.touched.contains(&server));
        assert!(
            applied
                .subjects
                .contains(&(server.namespace.clone(), server.name.clone())),
            "{:?}",
            applied.subjects
        );
        // The client now needs the server's access label.
        assert!(
            applied
                .labels
                .iter()
                .any(|l| l.workload.name == i.workload.name
                    && l.set.keys().any(|k| k.starts_with(labels::ACCESS_PREFIX))),
            "{:?}",
            applied.labels
        );
    }
    fn facts_of(state: EdgeState, allowed: bool, ports: &str) -> PairFacts {
        PairFacts {
            state,
            allowed,
            ports: ports.into(),
            declared_ports: String::new(),
        }
    }

    #[test]
    fn impact_puts_losses_first_and_tells_declaration_from_access() {
        use EdgeState::*;
        let f = facts_of;
        let cases = [
            (Some(f(Enforced, true, "TCP 80")), None, Impact::LosesAccess),
            (
                Some(f(Enforced, true, "TCP 80")),
                Some(f(Blocked, false, "")),
                Impact::LosesAccess,
            ),
            (
                Some(f(Undeclared, true, "TCP 80")),
                None,
                Impact::LosesAccess,
            ),
            (None, Some(f(Blocked, false, "")), Impact::LosesAccess),
            (
                None,
                Some(f(Enforced, true, "TCP 80")),
                Impact::NewlyAllowed,
            ),
            (
                Some(f(Blocked, false, "")),
                Some(f(Enforced, true, "TCP 80")),
                Impact::NewlyAllowed,
            ),
            (
                Some(f(Enforced, true, "TCP 80")),
                Some(f(Enforced, true, "TCP 80,443")),
                Impact::PortsChange,
            ),
            (
                Some(f(Open, true, "All")),
                Some(f(Enforced, true, "All")),
                Impact::Protection,
            ),
            (
                Some(f(Enforced, true, "All")),
                Some(f(Unprotected, true, "All")),
                Impact::Protection,
            ),
            // The bug the issue names: enforced → undeclared is no new access.
            (
                Some(f(Enforced, true, "All")),
                Some(f(Undeclared, true, "All")),
                Impact::Declaration,
            ),
            (
                Some(f(Undeclared, true, "All")),
                Some(f(Enforced, true, "All")),
                Impact::Declaration,
            ),
            (Some(f(Blocked, false, "")), None, Impact::Declaration),
        ];
        for (before, after, want) in cases {
            assert_eq!(
                Impact::of(before.as_ref(), after.as_ref()),
                want,
                "{before:?} → {after:?}"
            );
            let text = why(before.as_ref(), after.as_ref(), "web", "payments");
            assert!(text.ends_with('.') && text.len() > 20, "{text}");
        }
        let mut sorted = Impact::ALL;
        sorted.sort();
        assert_eq!(sorted[0], Impact::LosesAccess);
        assert_eq!(
            why(
                Some(&f(Undeclared, true, "TCP 8443")),
                Some(&f(Enforced, true, "TCP 8443")),
                "web",
                "payments"
            ),
            "web would declare this call; it is already allowed today, so nothing changes at runtime."
        );
    }

    #[test]
    fn reconcile_holds_what_the_operator_fixes_anyway_and_not_the_draft_s_own_change() {
        let opts = GenerateOptions::default();
        let mut checked = 0;
        for seed in 1..=4u64 {
            let live = estate(seed);
            let report = crate::drift::analyze(&live, &opts);
            // The client's current intents, unchanged: everything that changes is fixed anyway.
            let i = live.intents[rng_index(live.intents.len(), seed as usize)].clone();
            let same = apply(&live, vec![i.clone()], &opts, Generation::Subjects);
            let fixed = reconcile(&live, &same, &opts);
            assert_eq!(
                pair_changes(&report, &live, &same, &opts),
                pair_changes(&report, &live, &fixed, &opts),
                "seed {seed}"
            );
            // One more target: its pair is the draft's own, absent from the reconcile.
            let client =
                WorkloadId::new(&i.namespace, &i.workload.name, i.workload.kind.as_deref());
            let Some(server) = live
                .workload_ids()
                .into_iter()
                .find(|w| {
                    **w != client
                        && !report
                            .edges
                            .iter()
                            .any(|e| e.source == client && e.target == **w)
                })
                .cloned()
            else {
                continue;
            };
            let mut more = i.clone();
            more.targets.push(target(&server, false));
            let applied = apply(&live, vec![more], &opts, Generation::Subjects);
            let fixed = reconcile(&live, &applied, &opts);
            assert_eq!(fixed.subjects, applied.subjects);
            let key = (client.to_string(), server.to_string());
            let own = pair_changes(&report, &live, &applied, &opts);
            assert!(own.iter().any(|c| c.key == key), "seed {seed}: {own:?}");
            let anyway = pair_changes(&report, &live, &fixed, &opts);
            assert!(!anyway.iter().any(|c| c.key == key), "seed {seed}");
            checked += 1;
        }
        assert!(checked >= 3);
    }
}
