//! What the graph view shows, computed from the API's graph and the view's parameters: pure,
//! tested natively.
//!
//! In: an [`accord_api::Graph`] and [`ViewParams`] (namespace and state filters, focus, which
//! namespaces are expanded). Out: a [`Scene`] of nodes (workloads, or whole namespaces when
//! aggregated) and edges, already laid out; plus the JSON and SVG exports of a scene.

use std::collections::{BTreeMap, BTreeSet};

use accord_api::{Edge, EdgeState, Graph, StateCounts, filter};

use crate::layout::{self, NODE_H, NODE_W};

/// Clusters of at least this many workloads open at namespace level.
pub const LARGE_CLUSTER: usize = 500;

/// The view's parameters, as kept in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewParams {
    /// Only these namespaces (empty: all).
    pub namespaces: BTreeSet<String>,
    /// Only edges in these states.
    pub states: BTreeSet<EdgeState>,
    /// Neighbourhood of this workload only.
    pub focus: Option<String>,
    /// Show namespaces as single nodes, except those in `expanded`.
    pub aggregate: bool,
    pub expanded: BTreeSet<String>,
}

impl ViewParams {
    /// Every state but `open`, which is default-allow and hidden unless asked for.
    pub fn default_states() -> BTreeSet<EdgeState> {
        filter::default_states()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Workload,
    Namespace,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SceneNode {
    /// Workload id, or the namespace name for an aggregate.
    pub id: String,
    pub kind: NodeKind,
    pub namespace: String,
    pub label: String,
    /// Kind of workload, or `N workloads`.
    pub detail: String,
    pub drift: u32,
    /// None of its calls is in a shown state: drawn faint, kept in place.
    pub faded: bool,
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SceneEdge {
    pub source: usize,
    pub target: usize,
    /// The worst state among the workload edges it stands for.
    pub state: EdgeState,
    pub counts: StateCounts,
    pub ports: String,
    pub path: String,
    /// Where the edge's call count is written (when it stands for more than one call).
    pub label_at: (f64, f64),
    /// Observed traffic (workload edges only): its mark (`declared`, `undeclared`, `dropped`
    /// or `unused`) and the server's words for it.
    pub observed: Option<(String, String)>,
    /// The bundle (index into [`Scene::bundles`]) it joins on its way to a namespace's box; its
    /// count is the bundle's.
    pub bundle: Option<usize>,
}

/// The calls between the drawn namespace and another namespace's box, in the namespace
/// drawing: their edges meet in one line into the box, which carries their count.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// The namespaces at its ends, the caller first.
    pub source: String,
    pub target: String,
    /// Where the count is written, on the shared line.
    pub at: (f64, f64),
    pub counts: StateCounts,
    pub state: EdgeState,
    /// Observed traffic between the two namespaces: its mark and words.
    pub observed: Option<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scene {
    pub nodes: Vec<SceneNode>,
    pub edges: Vec<SceneEdge>,
    pub groups: Vec<layout::GroupBox>,
    pub bundles: Vec<Bundle>,
    pub width: f64,
    pub height: f64,
}

/// How bad a state is, for choosing the colour of an aggregated edge (the API's one ranking).
pub use accord_api::filter::severity;

/// Colour of each state (also used inline in SVG exports, which carry no stylesheet).
pub fn colour(state: EdgeState) -> &'static str {
    match state {
        EdgeState::Enforced => "#16a34a",
        EdgeState::Blocked => "#dc2626",
        EdgeState::Unprotected => "#d97706",
        EdgeState::Undeclared => "#9333ea",
        EdgeState::Open => "#94a3b8",
    }
}

/// The short name of a workload id: `ns/name[Kind]` → `name`.
pub fn short_name(id: &str) -> &str {
    let rest = id.split_once('/').map_or(id, |(_, r)| r);
    rest.split_once('[').map_or(rest, |(n, _)| n)
}

/// The edges the filters keep: the state and namespace filter the server applies too
/// ([`filter::EdgeFilter`]), then focus (edges touching the focused workload).
pub fn visible_edges<'g>(graph: &'g Graph, p: &ViewParams) -> Vec<&'g Edge> {
    let keep = filter::EdgeFilter {
        states: p.states.clone(),
        namespaces: p.namespaces.clone(),
    };
    graph
        .edges
        .iter()
        .filter(|e| keep.keeps(e))
        .filter(|e| {
            p.focus
                .as_deref()
                .is_none_or(|f| e.source == f || e.target == f)
        })
        .collect()
}

/// Builds and lays out the scene.
pub fn build(graph: &Graph, p: &ViewParams) -> Scene {
    let edges = visible_edges(graph, p);
    // Workloads shown: those in the namespace filter (or all), restricted to the focus'
    // neighbourhood when focused; plus the far ends of kept edges.
    let mut shown: BTreeSet<&str> = BTreeSet::new();
    match &p.focus {
        Some(f) => {
            if graph.nodes.iter().any(|n| &n.id == f) {
                shown.insert(f.as_str());
            }
        }
        None => {
            for n in &graph.nodes {
                if p.namespaces.is_empty() || p.namespaces.contains(&n.namespace) {
                    shown.insert(n.id.as_str());
                }
            }
        }
    }
    for e in &edges {
        shown.insert(&e.source);
        shown.insert(&e.target);
    }

    let by_id: BTreeMap<&str, &accord_api::Node> =
        graph.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let ns_of = |id: &str| -> String {
        by_id.get(id).map_or_else(
            || id.split_once('/').map_or("", |(ns, _)| ns).to_string(),
            |n| n.namespace.clone(),
        )
    };
    let aggregated = |ns: &str| p.aggregate && p.focus.is_none() && !p.expanded.contains(ns);

    // Nodes, keyed by scene id.
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes: Vec<SceneNode> = Vec::new();
    let mut ns_sizes: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for n in &graph.nodes {
        let e = ns_sizes.entry(n.namespace.clone()).or_default();
        e.0 += 1;
        e.1 += n.drift;
    }
    let scene_id = |id: &str| -> (String, bool) {
        let ns = ns_of(id);
        if aggregated(&ns) {
            (ns, true)
        } else {
            (id.to_string(), false)
        }
    };
    for id in &shown {
        let (sid, agg) = scene_id(id);
        if index.contains_key(&sid) {
            continue;
        }
        index.insert(sid.clone(), nodes.len());
        let ns = ns_of(id);
        if agg {
            let (count, drift) = ns_sizes.get(&ns).copied().unwrap_or_default();
            nodes.push(SceneNode {
                id: sid.clone(),
                kind: NodeKind::Namespace,
                namespace: ns.clone(),
                label: ns.clone(),
                detail: format!("{count} workload{}", if count == 1 { "" } else { "s" }),
                drift,
                faded: false,
                x: 0.0,
                y: 0.0,
            });
        } else {
            let node = by_id.get(*id);
            nodes.push(SceneNode {
                id: sid.clone(),
                kind: NodeKind::Workload,
                namespace: ns.clone(),
                label: node.map_or_else(|| short_name(id).to_string(), |n| n.name.clone()),
                detail: node.map_or_else(String::new, |n| n.kind.clone()),
                drift: node.map_or(0, |n| n.drift),
                faded: false,
                x: 0.0,
                y: 0.0,
            });
        }
    }

    // Edges, merged per scene pair.
    let mut merged: BTreeMap<(usize, usize), (StateCounts, EdgeState, BTreeSet<String>)> =
        BTreeMap::new();
    for e in &edges {
        let a = index[scene_id(&e.source).0.as_str()];
        let b = index[scene_id(&e.target).0.as_str()];
        if a == b && nodes[a].kind == NodeKind::Namespace {
            continue; // calls inside a collapsed namespace
        }
        let entry = merged
            .entry((a, b))
            .or_insert_with(|| (StateCounts::default(), e.state, BTreeSet::new()));
        entry.0.add(e.state, 1);
        if severity(e.state) > severity(entry.1) {
            entry.1 = e.state;
        }
        if !e.ports.is_empty() {
            entry.2.insert(e.ports.clone());
        }
    }

    if p.aggregate && p.focus.is_none() && nodes.iter().any(|n| n.kind == NodeKind::Workload) {
        return columns(nodes, merged);
    }
    let lnodes: Vec<layout::Node> = nodes
        .iter()
        .map(|n| layout::Node {
            id: n.id.clone(),
            group: n.namespace.clone(),
        })
        .collect();
    let pairs: Vec<(usize, usize)> = merged.keys().copied().collect();
    let l = layout::layout(&lnodes, &pairs);
    for (n, p) in nodes.iter_mut().zip(&l.nodes) {
        n.x = p.x;
        n.y = p.y;
    }
    let edges = merged
        .into_iter()
        .map(|((a, b), (counts, state, ports))| SceneEdge {
            source: a,
            target: b,
            state,
            counts,
            ports: ports.into_iter().collect::<Vec<_>>().join("; "),
            path: layout::edge_path(&l.nodes[a], &l.nodes[b]),
            label_at: layout::edge_mid(&l.nodes[a], &l.nodes[b]),
            observed: None,
            bundle: None,
        })
        .collect();
    Scene {
        nodes,
        edges,
        groups: l.groups,
        bundles: Vec::new(),
        width: l.width,
        height: l.height,
    }
}

/// Sorts `v` by `less` (insertion: the lists are short, and one small routine is cheaper in
/// WASM than the standard sorts for each key type).
pub fn isort(v: &mut [usize], less: &dyn Fn(usize, usize) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(v[j], v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Calls merged per pair of scene nodes: counts, worst state, ports.
type Merged = BTreeMap<(usize, usize), (StateCounts, EdgeState, BTreeSet<String>)>;

const COL_GAP: f64 = 210.0;
/// Room right of the middle column for the arcs of internal calls.
const ARC_ROOM: f64 = 250.0;
const BOX_GAP: f64 = 12.0;
const ROW_GAP: f64 = 16.0;
const TOP: f64 = 54.0;
/// How far from a box its bundle's edges meet.
const JOIN: f64 = 64.0;

/// The namespace drawing: the drawn namespaces' workloads in a middle column, the namespaces
/// calling them as boxes on the left, those they call on the right (a namespace doing both
/// appears on both sides), each side worst first. The edges to one box meet in one line
/// carrying their count; calls inside the middle column are arcs on its right.
fn columns(mut nodes: Vec<SceneNode>, merged: Merged) -> Scene {
    let is_box = |n: &SceneNode| n.kind == NodeKind::Namespace;
    // The right-hand copy of a box that is on both sides.
    // (Vectors and one insertion sort rather than maps and the standard sorts: less WASM.)
    let mut right_of: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut side_right = vec![false; nodes.len()];
    let mut calls_in = vec![false; nodes.len()];
    for (a, b) in merged.keys() {
        if is_box(&nodes[*a]) && !is_box(&nodes[*b]) {
            calls_in[*a] = true;
        }
    }
    let mut edges: Vec<(usize, usize, StateCounts, EdgeState, String)> = Vec::new();
    for ((a, b), (counts, state, ports)) in merged {
        let mut b = b;
        if is_box(&nodes[b]) && !is_box(&nodes[a]) {
            if calls_in[b] {
                b = match right_of[b] {
                    Some(r) => r,
                    None => {
                        nodes.push(nodes[b].clone());
                        side_right.push(true);
                        right_of[b] = Some(nodes.len() - 1);
                        nodes.len() - 1
                    }
                };
            } else {
                side_right[b] = true;
            }
        }
        let ports = ports.into_iter().collect::<Vec<_>>().join("; ");
        edges.push((a, b, counts, state, ports));
    }
    // Per box: its calls in all, to order each side worst first.
    let n = nodes.len();
    let mut total = vec![StateCounts::default(); n];
    let mut worst: Vec<Option<EdgeState>> = vec![None; n];
    for (a, b, c, st, _) in &edges {
        for i in [*a, *b] {
            for s in EdgeState::ALL {
                total[i].add(s, c.get(s));
            }
            if worst[i].is_none_or(|w| severity(*st) > severity(w)) {
                worst[i] = Some(*st);
            }
        }
    }
    let rank = |i: usize| {
        (
            std::cmp::Reverse(worst[i].map_or(0, severity)),
            std::cmp::Reverse(total[i].total()),
            &nodes[i].id,
        )
    };
    let side = |right: bool| {
        let mut v: Vec<usize> = (0..n)
            .filter(|&i| is_box(&nodes[i]) && side_right[i] == right)
            .collect();
        isort(&mut v, &|a, b| rank(a) < rank(b));
        v
    };
    let (left, right) = (side(false), side(true));
    let mut pos_of = vec![0.0f64; n];
    for list in [&left, &right] {
        for (k, &i) in list.iter().enumerate() {
            pos_of[i] = k as f64 / list.len().max(1) as f64;
        }
    }
    // The middle column: by namespace, then by where their boxes are (fewer crossings).
    let mut bary = vec![0.0f64; n];
    for (i, slot) in bary.iter_mut().enumerate() {
        let near: Vec<f64> = edges
            .iter()
            .filter_map(|(a, b, ..)| match (*a == i, *b == i) {
                (true, false) if is_box(&nodes[*b]) => Some(pos_of[*b]),
                (false, true) if is_box(&nodes[*a]) => Some(pos_of[*a]),
                _ => None,
            })
            .collect();
        *slot = if near.is_empty() {
            1.0
        } else {
            near.iter().sum::<f64>() / near.len() as f64
        };
    }
    let mut middle: Vec<usize> = (0..n).filter(|&i| !is_box(&nodes[i])).collect();
    isort(&mut middle, &|a, b| {
        let (x, y) = (&nodes[a], &nodes[b]);
        (&x.namespace, bary[a], &x.id) < (&y.namespace, bary[b], &y.id)
    });

    // A box stands for the workloads of its namespace that take part in these calls (not all).
    for n in nodes.iter_mut().filter(|n| n.kind == NodeKind::Namespace) {
        let k = n.detail.split(' ').next().unwrap_or_default().to_string();
        n.detail = format!("{k} of its workloads in these calls");
    }
    let (lx, cx) = (24.0, 24.0 + NODE_W + COL_GAP);
    let rx = cx + NODE_W + ARC_ROOM;
    for (list, x) in [(&left, lx), (&right, rx)] {
        for (k, &i) in list.iter().enumerate() {
            nodes[i].x = x;
            nodes[i].y = TOP + k as f64 * (NODE_H + BOX_GAP);
        }
    }
    let mut groups = Vec::new();
    let mut y = TOP - 30.0;
    let mut k = 0;
    while k < middle.len() {
        let ns = nodes[middle[k]].namespace.clone();
        let y0 = y;
        y += 30.0;
        while k < middle.len() && nodes[middle[k]].namespace == ns {
            let i = middle[k];
            nodes[i].x = cx;
            nodes[i].y = y;
            y += NODE_H + ROW_GAP;
            k += 1;
        }
        groups.push(layout::GroupBox {
            name: ns,
            x: cx - 14.0,
            y: y0,
            w: NODE_W + 28.0,
            h: y - y0 - ROW_GAP + 14.0,
        });
        y += 22.0;
    }
    let mid = |i: usize| (nodes[i].x, nodes[i].y + NODE_H / 2.0);
    let mut bundles: Vec<Bundle> = Vec::new();
    let mut bundle_of: Vec<Option<usize>> = vec![None; n];
    let scene_edges = edges
        .into_iter()
        .map(|(a, b, counts, state, ports)| {
            let (ax, ay) = mid(a);
            let (bx, by) = mid(b);
            let (path, label_at, bundle) = if is_box(&nodes[a]) || is_box(&nodes[b]) {
                // From a caller's box on the left, or into a callee's box on the right.
                let (bi, jx, jy, path) = if is_box(&nodes[a]) {
                    let (sx, jx) = (ax + NODE_W, ax + NODE_W + JOIN);
                    let d = (bx - jx) / 2.0;
                    let path = format!(
                        "M{sx:.1},{ay:.1} L{jx:.1},{ay:.1} C{:.1},{ay:.1} {:.1},{by:.1} {bx:.1},{by:.1}",
                        jx + d,
                        bx - d
                    );
                    (a, jx - JOIN / 2.0, ay, path)
                } else {
                    let (sx, jx) = (ax + NODE_W, bx - JOIN);
                    let d = (jx - sx) / 2.0;
                    let path = format!(
                        "M{sx:.1},{ay:.1} C{:.1},{ay:.1} {:.1},{by:.1} {jx:.1},{by:.1} L{bx:.1},{by:.1}",
                        sx + d,
                        jx - d
                    );
                    (b, jx + JOIN / 2.0, by, path)
                };
                let k = match bundle_of[bi] {
                    Some(k) => k,
                    None => {
                        bundles.push(Bundle {
                            source: nodes[a].namespace.clone(),
                            target: nodes[b].namespace.clone(),
                            at: (jx, jy + 4.0),
                            counts: StateCounts::default(),
                            state,
                            observed: None,
                        });
                        bundle_of[bi] = Some(bundles.len() - 1);
                        bundles.len() - 1
                    }
                };
                let bu = &mut bundles[k];
                for s in EdgeState::ALL {
                    bu.counts.add(s, counts.get(s));
                }
                if severity(state) > severity(bu.state) {
                    bu.state = state;
                }
                (path, (jx, jy + 4.0), Some(k))
            } else {
                // A call inside the middle column: an arc on its right.
                let x = ax + NODE_W;
                let bulge = (28.0 + (by - ay).abs() * 0.3).min(ARC_ROOM - 60.0);
                let (y1, y2) = (ay - 5.0, by + 5.0);
                let path = format!(
                    "M{x:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x:.1},{y2:.1}",
                    x + bulge,
                    x + bulge
                );
                (path, (x + bulge * 0.75, (y1 + y2) / 2.0), None)
            };
            SceneEdge {
                source: a,
                target: b,
                state,
                counts,
                ports,
                path,
                label_at,
                observed: None,
                bundle,
            }
        })
        .collect();
    let rows = left.len().max(right.len()) as f64;
    let width = rx + NODE_W + 24.0;
    let height = (TOP + rows * (NODE_H + BOX_GAP)).max(y) + 24.0;
    Scene {
        nodes,
        edges: scene_edges,
        groups,
        bundles,
        width,
        height,
    }
}

/// The scene with only the calls in `states`: every node keeps its place (those left without
/// a shown call are faded), aggregated edges count and colour only the shown calls.
pub fn only_states(scene: &Scene, states: &BTreeSet<EdgeState>) -> Scene {
    let mut out = scene.clone();
    out.edges.retain_mut(|e| {
        let mut kept = StateCounts::default();
        let mut worst: Option<EdgeState> = None;
        for s in EdgeState::ALL {
            let n = e.counts.get(s);
            if n > 0 && states.contains(&s) {
                kept.add(s, n);
                if worst.is_none_or(|w| severity(s) > severity(w)) {
                    worst = Some(s);
                }
            }
        }
        let Some(worst) = worst else { return false };
        e.counts = kept;
        e.state = worst;
        true
    });
    for b in &mut out.bundles {
        b.counts = StateCounts::default();
    }
    for e in &out.edges {
        if let Some(b) = e.bundle.and_then(|k| out.bundles.get_mut(k)) {
            if b.counts.total() == 0 || severity(e.state) > severity(b.state) {
                b.state = e.state;
            }
            for s in EdgeState::ALL {
                b.counts.add(s, e.counts.get(s));
            }
        }
    }
    let mut touched = vec![false; out.nodes.len()];
    for e in &out.edges {
        touched[e.source] = true;
        touched[e.target] = true;
    }
    let mut had = vec![false; out.nodes.len()];
    for e in &scene.edges {
        had[e.source] = true;
        had[e.target] = true;
    }
    for ((n, t), h) in out.nodes.iter_mut().zip(touched).zip(had) {
        n.faded = h && !t;
    }
    out
}

/// Marks the scene's workload edges with observed traffic, and its bundles with that between
/// namespaces: `marks` and `ns_marks` are `[source->target, mark, words]`, sorted.
pub fn observe(scene: &mut Scene, marks: &[[String; 3]], ns_marks: &[[String; 3]]) {
    let find = |marks: &[[String; 3]], key: String| {
        marks
            .binary_search_by(|m| m[0].as_str().cmp(&key))
            .ok()
            .map(|i| (marks[i][1].clone(), marks[i][2].clone()))
    };
    for e in &mut scene.edges {
        let key = format!("{}->{}", scene.nodes[e.source].id, scene.nodes[e.target].id);
        e.observed = find(marks, key);
    }
    for b in &mut scene.bundles {
        b.observed = find(ns_marks, format!("{}->{}", b.source, b.target));
    }
}

/// The glyph drawn on an observed edge of this mark.
pub fn badge(mark: &str) -> &'static str {
    match mark {
        "dropped" => "✕",
        "undeclared" => "?",
        _ => "",
    }
}

/// The observed marks, as the legend explains them.
pub const MARKS: [(&str, &str); 4] = [
    ("declared", "observed, declared"),
    ("undeclared", "observed, undeclared"),
    ("dropped", "observed, dropped now"),
    ("unused", "declared, not observed"),
];

#[derive(serde::Serialize)]
struct JsonNode<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    namespace: &'a str,
    x: f64,
    y: f64,
}

#[derive(serde::Serialize)]
struct JsonEdge<'a> {
    source: &'a str,
    target: &'a str,
    state: EdgeState,
    counts: &'a StateCounts,
    ports: &'a str,
}

#[derive(serde::Serialize)]
struct JsonScene<'a> {
    nodes: Vec<JsonNode<'a>>,
    edges: Vec<JsonEdge<'a>>,
}

/// The scene as JSON: nodes and edges with their states, for export. (Typed structs and the
/// compact writer the API calls use already: `serde_json::Value` and the pretty printer cost
/// the WASM several KiB.)
pub fn to_json(scene: &Scene) -> String {
    let doc = JsonScene {
        nodes: scene
            .nodes
            .iter()
            .map(|n| JsonNode {
                id: &n.id,
                kind: if n.kind == NodeKind::Namespace {
                    "namespace"
                } else {
                    "workload"
                },
                namespace: &n.namespace,
                x: n.x,
                y: n.y,
            })
            .collect(),
        edges: scene
            .edges
            .iter()
            .map(|e| JsonEdge {
                source: &scene.nodes[e.source].id,
                target: &scene.nodes[e.target].id,
                state: e.state,
                counts: &e.counts,
                ports: &e.ports,
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A standalone SVG document of the scene, with inline styles.
pub fn to_svg(scene: &Scene) -> String {
    use std::fmt::Write;
    // Room below the drawing for the legend.
    let legend_h = if scene.edges.iter().any(|e| e.observed.is_some()) {
        56.0
    } else {
        34.0
    };
    let w = scene.width.max(560.0);
    let h = scene.height + legend_h;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Inter, system-ui, sans-serif"><rect width="100%" height="100%" fill="#ffffff"/><defs>"##
    );
    for st in EdgeState::ALL {
        let _ = write!(
            s,
            r#"<marker id="arrow-{st}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            colour(st)
        );
    }
    s += "</defs>";
    for g in &scene.groups {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="10" fill="#f8fafc" stroke="#cbd5e1"/><text x="{:.1}" y="{:.1}" font-size="12" font-weight="600" fill="#475569">{}</text>"##,
            g.x,
            g.y,
            g.w,
            g.h,
            g.x + 12.0,
            g.y + 19.0,
            esc(&g.name)
        );
    }
    for e in &scene.edges {
        let total = e.counts.total();
        if let Some((m, _)) = &e.observed {
            let _ = write!(
                s,
                r##"<path d="{}" fill="none" stroke="{}" stroke-width="8" stroke-opacity=".35"/>"##,
                e.path,
                halo(m)
            );
        }
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="{:.1}"{} marker-end="url(#arrow-{})"/>"#,
            e.path,
            colour(e.state),
            if total > 1 {
                1.8 + f64::from(total).ln().min(3.0)
            } else {
                1.8
            },
            dash(e.state),
            e.state
        );
        if total > 1 && e.bundle.is_none() {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" font-weight="600" text-anchor="middle" fill="#334155">{total}</text>"##,
                e.label_at.0, e.label_at.1
            );
        }
        if let Some((m, _)) = &e.observed {
            svg_badge(&mut s, m, e.label_at.0, e.label_at.1);
        }
    }
    // A bundle's count where its edges meet.
    for b in scene.bundles.iter().filter(|b| b.counts.total() > 0) {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" font-weight="700" text-anchor="middle" fill="#1e293b" stroke="#ffffff" stroke-width="4" paint-order="stroke">{}</text>"##,
            b.at.0,
            b.at.1,
            b.counts.total()
        );
    }
    for n in &scene.nodes {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{}" stroke="#64748b"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#0f172a">{}</text>"##,
            n.x,
            n.y,
            if n.kind == NodeKind::Namespace {
                "#eef2ff"
            } else {
                "#ffffff"
            },
            n.x + 10.0,
            n.y + 19.0,
            esc(&n.label)
        );
    }
    // The legend: each state's line style and meaning.
    let y = scene.height + 20.0;
    let mut x = 12.0;
    for st in EdgeState::ALL {
        let _ = write!(
            s,
            r##"<line x1="{x:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{}" stroke-width="2.2"{}/><text x="{:.0}" y="{:.0}" font-size="11" fill="#334155">{st}</text>"##,
            x + 22.0,
            colour(st),
            dash(st),
            x + 27.0,
            y + 4.0
        );
        x += 110.0;
    }
    // The observed marks, when the drawing has any.
    if scene.edges.iter().any(|e| e.observed.is_some()) {
        let y = y + 22.0;
        let mut x = 12.0;
        for (m, text) in MARKS {
            let _ = write!(
                s,
                r##"<line x1="{x:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{}" stroke-width="8" stroke-opacity=".35"/><text x="{:.0}" y="{:.0}" font-size="11" fill="#334155">{text}</text>"##,
                x + 22.0,
                halo(m),
                x + 27.0,
                y + 4.0
            );
            svg_badge(&mut s, m, x + 11.0, y);
            x += 160.0;
        }
    }
    s + "</svg>"
}

/// The halo colour of an observed mark (the state colours stay the edge's own).
pub fn halo(mark: &str) -> &'static str {
    match mark {
        "dropped" => "#e11d48",
        "unused" => "#cbd5e1",
        _ => "#0ea5e9",
    }
}

/// The mark's badge (if it has one) centred at `x`, `y`.
fn svg_badge(s: &mut String, mark: &str, x: f64, y: f64) {
    use std::fmt::Write;
    let b = badge(mark);
    if !b.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" font-size="12" font-weight="800" text-anchor="middle" fill="{}" stroke="#ffffff" stroke-width="4" paint-order="stroke">{b}</text>"##,
            y + 4.0,
            halo(mark)
        );
    }
}

/// The dash pattern of a state's edges (as the stylesheet draws them).
fn dash(state: EdgeState) -> &'static str {
    match state {
        EdgeState::Blocked => r#" stroke-dasharray="6 3""#,
        EdgeState::Open => r#" stroke-dasharray="4 3""#,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_api::Node;

    fn node(id: &str) -> Node {
        let (ns, rest) = id.split_once('/').unwrap();
        Node {
            id: id.into(),
            namespace: ns.into(),
            name: short_name(rest).into(),
            kind: "Deployment".into(),
            ..Node::default()
        }
    }

    fn edge(s: &str, t: &str, state: EdgeState) -> Edge {
        Edge {
            source: s.into(),
            target: t.into(),
            state,
            ports: "TCP 80".into(),
            declared_ports: String::new(),
            declared: true,
            allowed: state != EdgeState::Blocked,
            first_seen: None,
            last_changed: None,
        }
    }

    fn demo() -> Graph {
        Graph {
            nodes: [
                "s/web[D]",
                "s/cart[D]",
                "p/auth[D]",
                "c/pay[D]",
                "c/orders[D]",
            ]
            .into_iter()
            .map(node)
            .collect(),
            edges: vec![
                edge("s/web[D]", "s/cart[D]", EdgeState::Enforced),
                edge("s/cart[D]", "p/auth[D]", EdgeState::Blocked),
                edge("s/web[D]", "c/pay[D]", EdgeState::Undeclared),
                edge("c/orders[D]", "c/pay[D]", EdgeState::Open),
            ],
            ..Graph::default()
        }
    }

    fn params() -> ViewParams {
        ViewParams {
            states: ViewParams::default_states(),
            ..ViewParams::default()
        }
    }

    #[test]
    fn open_edges_are_hidden_by_default() {
        let s = build(&demo(), &params());
        assert_eq!(s.nodes.len(), 5);
        assert_eq!(s.edges.len(), 3);
        assert!(s.edges.iter().all(|e| e.state != EdgeState::Open));
    }

    #[test]
    fn focus_keeps_the_neighbourhood_only() {
        let p = ViewParams {
            focus: Some("s/cart[D]".into()),
            ..params()
        };
        let s = build(&demo(), &p);
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, vec!["p/auth[D]", "s/cart[D]", "s/web[D]"]);
        assert_eq!(s.edges.len(), 2);
    }

    #[test]
    fn namespace_filter_keeps_edges_with_either_end_inside() {
        let p = ViewParams {
            namespaces: ["p".to_string()].into(),
            ..params()
        };
        let s = build(&demo(), &p);
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, vec!["p/auth[D]", "s/cart[D]"]);
    }

    #[test]
    fn aggregation_merges_namespaces_and_keeps_the_worst_state() {
        let mut g = demo();
        g.edges
            .push(edge("s/cart[D]", "p/auth[D]", EdgeState::Enforced));
        let p = ViewParams {
            aggregate: true,
            ..params()
        };
        let s = build(&g, &p);
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, vec!["c", "p", "s"]);
        let sp = s
            .edges
            .iter()
            .find(|e| s.nodes[e.source].id == "s" && s.nodes[e.target].id == "p")
            .unwrap();
        assert_eq!(sp.state, EdgeState::Blocked);
        assert_eq!(sp.counts.total(), 2);
        // The call inside `s` disappears while `s` is collapsed…
        assert_eq!(s.edges.len(), 2);
        // …and comes back when it is expanded.
        let p = ViewParams {
            expanded: ["s".to_string()].into(),
            ..p
        };
        let s = build(&g, &p);
        assert!(s.nodes.iter().any(|n| n.id == "s/web[D]"));
        assert!(
            s.nodes
                .iter()
                .any(|n| n.id == "p" && n.kind == NodeKind::Namespace)
        );
        assert_eq!(s.edges.len(), 3);
    }

    #[test]
    fn exports_name_every_node_and_edge() {
        let s = build(&demo(), &params());
        let json: serde_json::Value = serde_json::from_str(&to_json(&s)).unwrap();
        assert_eq!(json["nodes"].as_array().unwrap().len(), 5);
        assert_eq!(json["edges"].as_array().unwrap().len(), 3);
        let svg = to_svg(&s);
        assert!(svg.starts_with("<svg xmlns="));
        // One arrowhead marker per state, then the three edges, each ending in its arrowhead.
        assert_eq!(svg.matches("<marker").count(), EdgeState::ALL.len());
        assert_eq!(svg.matches("marker-end=\"url(#arrow-").count(), 3);
        assert!(svg.contains(">cart<"));
        // Blocked edges are dashed, in the drawing and in the legend, which names every state.
        let blocked = svg
            .split("<path")
            .find(|p| p.contains("marker-end=\"url(#arrow-blocked)\""))
            .expect("a blocked edge");
        assert!(blocked.contains("stroke-dasharray"));
        for st in EdgeState::ALL {
            assert!(svg.contains(&format!(">{st}</text>")), "legend names {st}");
        }
    }

    #[test]
    fn observed_marks_go_on_their_edges_and_into_the_exported_legend() {
        let mut s = build(&demo(), &params());
        // Without observed data, nothing of it in the export.
        assert!(!to_svg(&s).contains("observed"));
        let (a, b) = (s.edges[0].source, s.edges[0].target);
        let key = format!("{}->{}", s.nodes[a].id, s.nodes[b].id);
        let marks = [[key, "dropped".to_string(), "2 dropped now".to_string()]];
        observe(&mut s, &marks, &[]);
        assert_eq!(s.edges[0].observed.as_ref().unwrap().0, "dropped");
        assert!(s.edges[1..].iter().all(|e| e.observed.is_none()));
        let svg = to_svg(&s);
        // The halo under the edge, its badge, and the legend naming every mark.
        assert!(svg.contains(&format!(
            "stroke=\"{}\" stroke-width=\"8\"",
            halo("dropped")
        )));
        assert!(svg.contains(">✕</text>"));
        for (_, words) in MARKS {
            assert!(
                svg.contains(&format!(">{words}</text>")),
                "legend names {words}"
            );
        }
    }

    #[test]
    fn a_namespace_drawing_puts_callers_left_callees_right_and_bundles_their_edges() {
        let mut g = demo();
        // p/auth calls back into s: p is on both sides.
        g.edges
            .push(edge("p/auth[D]", "s/web[D]", EdgeState::Enforced));
        g.edges
            .push(edge("s/web[D]", "p/auth[D]", EdgeState::Enforced));
        let p = ViewParams {
            aggregate: true,
            expanded: ["s".to_string()].into(),
            namespaces: ["s".to_string()].into(),
            ..params()
        };
        let s = build(&g, &p);
        let at =
            |id: &str| -> Vec<f64> { s.nodes.iter().filter(|n| n.id == id).map(|n| n.x).collect() };
        let (web, cart) = (at("s/web[D]")[0], at("s/cart[D]")[0]);
        assert_eq!(
            web, cart,
            "the namespace's workloads share the middle column"
        );
        // p calls s (left) and is called by it (right); c is only called (right).
        let p_x = at("p");
        assert_eq!(p_x.len(), 2);
        assert!(p_x[0] < web && p_x[1] > web, "{p_x:?}");
        assert!(at("c")[0] > web);
        // One bundle per box side, counting every call behind it: s→p holds cart→auth
        // (blocked) and web→auth, so it counts 2 and is blocked.
        let sp = s
            .bundles
            .iter()
            .find(|b| b.source == "s" && b.target == "p")
            .unwrap();
        assert_eq!((sp.counts.total(), sp.state), (2, EdgeState::Blocked));
        assert_eq!(s.bundles.len(), 3);
        // Worst first on each side: the blocked bundle's box above the undeclared one.
        let mut right: Vec<&SceneNode> = s.nodes.iter().filter(|n| n.x > web).collect();
        right.sort_by(|a, b| a.y.total_cmp(&b.y));
        let ids: Vec<&str> = right.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["p", "c"]);
        // No two nodes overlap.
        for (i, a) in s.nodes.iter().enumerate() {
            for b in &s.nodes[i + 1..] {
                let apart = (a.x - b.x).abs() >= NODE_W || (a.y - b.y).abs() >= NODE_H;
                assert!(apart, "{} overlaps {}", a.id, b.id);
            }
        }
        // Hiding blocked leaves s→p one call, enforced; marks per namespace pair go on bundles.
        let mut only = only_states(&s, &[EdgeState::Enforced].into());
        let sp = only
            .bundles
            .iter()
            .find(|b| b.source == "s" && b.target == "p")
            .unwrap();
        assert_eq!((sp.counts.total(), sp.state), (1, EdgeState::Enforced));
        let marks = [[
            "s->p".to_string(),
            "dropped".to_string(),
            "3 dropped".to_string(),
        ]];
        observe(&mut only, &[], &marks);
        let marked: Vec<&Bundle> = only
            .bundles
            .iter()
            .filter(|b| b.observed.is_some())
            .collect();
        assert_eq!(marked.len(), 1);
        assert_eq!(
            (marked[0].source.as_str(), marked[0].target.as_str()),
            ("s", "p")
        );
    }

    #[test]
    fn hiding_a_state_keeps_every_position_and_recolours_aggregates() {
        let g = demo();
        let all = ViewParams {
            states: EdgeState::ALL.into_iter().collect(),
            ..params()
        };
        let full = build(&g, &all);
        let only: BTreeSet<EdgeState> = [EdgeState::Blocked].into();
        let s = only_states(&full, &only);
        assert_eq!(s.nodes.len(), full.nodes.len());
        for (a, b) in s.nodes.iter().zip(&full.nodes) {
            assert_eq!((a.x, a.y), (b.x, b.y), "{} stays in place", a.id);
        }
        assert!(s.edges.iter().all(|e| e.state == EdgeState::Blocked));
        assert!(s.edges.len() < full.edges.len());
        // Nodes left without a shown call are faded, not removed.
        assert!(s.nodes.iter().any(|n| n.faded));
        assert!(!full.nodes.iter().any(|n| n.faded));
    }
}
