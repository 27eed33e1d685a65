//! Layered layout of the access graph: pure, deterministic, tested natively.
//!
//! Nodes (workloads, or whole namespaces when aggregated) flow left to right: a node's column
//! is its longest call path from a source of the call graph (cycles are broken by ignoring the
//! edges that close them, in a fixed order). Each group (a namespace) is a horizontal band drawn
//! as a box; inside a band, the nodes of one column are stacked and ordered by the barycenter of
//! their neighbours, a few sweeps left to right and back. Ties fall back to the node id, and
//! bands are sorted by name, so the same data always gives the same picture and adding an edge
//! moves only the nodes it touches.

use std::collections::BTreeMap;

/// A node to place: a stable id, the group (namespace) whose box holds it, and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub group: String,
}

/// Where a node went. Coordinates are the top-left corner, in SVG user units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placed {
    pub x: f64,
    pub y: f64,
    pub layer: usize,
}

/// The box of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupBox {
    pub name: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// In the order of the input nodes.
    pub nodes: Vec<Placed>,
    pub groups: Vec<GroupBox>,
    pub width: f64,
    pub height: f64,
}

pub const NODE_W: f64 = 168.0;
pub const NODE_H: f64 = 30.0;
const COL_GAP: f64 = 96.0;
const ROW_GAP: f64 = 14.0;
const BAND_PAD_X: f64 = 16.0;
const BAND_PAD_TOP: f64 = 30.0;
const BAND_PAD_BOTTOM: f64 = 14.0;
const BAND_GAP: f64 = 22.0;
const MARGIN: f64 = 24.0;
const SWEEPS: usize = 4;

/// Lays out `nodes` with directed `edges` (indices into `nodes`; self-loops and duplicates are
/// ignored).
pub fn layout(nodes: &[Node], edges: &[(usize, usize)]) -> Layout {
    let n = nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut inc: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a < n && b < n && a != b {
            out[a].push(b);
            inc[b].push(a);
        }
    }
    // Visit in id order so that the layering does not depend on the input order.
    let mut by_id: Vec<usize> = (0..n).collect();
    by_id.sort_by(|&a, &b| nodes[a].id.cmp(&nodes[b].id));
    for list in out.iter_mut().chain(inc.iter_mut()) {
        list.sort_by(|&a, &b| nodes[a].id.cmp(&nodes[b].id));
        list.dedup();
    }

    let dag = acyclic_edges(&by_id, &out);
    let layer = longest_path_layers(&by_id, &dag, n);

    // Bands: groups by name; cells: (group, layer) → nodes.
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in &by_id {
        groups.entry(nodes[i].group.as_str()).or_default().push(i);
    }
    let mut cells: BTreeMap<(&str, usize), Vec<usize>> = BTreeMap::new();
    for &i in &by_id {
        cells
            .entry((nodes[i].group.as_str(), layer[i]))
            .or_default()
            .push(i);
    }

    // A global vertical rank per node, used for barycenters: band order first, then position.
    let band_index: BTreeMap<&str, usize> =
        groups.keys().enumerate().map(|(k, g)| (*g, k)).collect();
    let rank = |g: &str, k: usize| band_index[g] as f64 * 100_000.0 + k as f64;
    let mut pos = vec![0.0f64; n];
    for ((g, _), list) in &cells {
        for (k, &i) in list.iter().enumerate() {
            pos[i] = rank(g, k);
        }
    }
    let max_layer = layer.iter().copied().max().unwrap_or(0);
    let mut layer_cells: Vec<Vec<(&str, usize)>> = vec![Vec::new(); max_layer + 1];
    for key in cells.keys() {
        layer_cells[key.1].push(*key);
    }
    for sweep in 0..SWEEPS {
        let forward = sweep % 2 == 0;
        for step in 0..=max_layer {
            let l = if forward { step } else { max_layer - step };
            for key in &layer_cells[l] {
                let Some(list) = cells.get_mut(key) else {
                    continue;
                };
                let mut keyed: Vec<(f64, usize)> = list
                    .iter()
                    .map(|&i| {
                        let ns = if forward { &inc[i] } else { &out[i] };
                        let b = if ns.is_empty() {
                            pos[i]
                        } else {
                            ns.iter().map(|&j| pos[j]).sum::<f64>() / ns.len() as f64
                        };
                        (b, i)
                    })
                    .collect();
                keyed.sort_by(|a, b| {
                    a.0.partial_cmp(&b.0)
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then_with(|| nodes[a.1].id.cmp(&nodes[b.1].id))
                });
                list.clear();
                for (k, (_, i)) in keyed.into_iter().enumerate() {
                    pos[i] = rank(key.0, k);
                    list.push(i);
                }
            }
        }
    }

    // Coordinates.
    let col_x = |l: usize| MARGIN + BAND_PAD_X + l as f64 * (NODE_W + COL_GAP);
    let mut placed = vec![
        Placed {
            x: 0.0,
            y: 0.0,
            layer: 0
        };
        n
    ];
    let mut boxes = Vec::with_capacity(groups.len());
    let mut y = MARGIN;
    let mut width: f64 = 0.0;
    for (g, members) in &groups {
        let lo = members.iter().map(|&i| layer[i]).min().unwrap_or(0);
        let hi = members.iter().map(|&i| layer[i]).max().unwrap_or(0);
        let rows = (lo..=hi)
            .map(|l| cells.get(&(*g, l)).map_or(0, Vec::len))
            .max()
            .unwrap_or(1);
        for l in lo..=hi {
            if let Some(list) = cells.get(&(*g, l)) {
                for (k, &i) in list.iter().enumerate() {
                    placed[i] = Placed {
                        x: col_x(l),
                        y: y + BAND_PAD_TOP + k as f64 * (NODE_H + ROW_GAP),
                        layer: l,
                    };
                }
            }
        }
        let h = BAND_PAD_TOP + rows as f64 * (NODE_H + ROW_GAP) - ROW_GAP + BAND_PAD_BOTTOM;
        let x = col_x(lo) - BAND_PAD_X;
        let w = col_x(hi) + NODE_W + BAND_PAD_X - x;
        width = width.max(x + w + MARGIN);
        boxes.push(GroupBox {
            name: (*g).to_string(),
            x,
            y,
            w,
            h,
        });
        y += h + BAND_GAP;
    }
    Layout {
        nodes: placed,
        groups: boxes,
        width: width.max(2.0 * MARGIN),
        height: (y - BAND_GAP + MARGIN).max(2.0 * MARGIN),
    }
}

/// The edges of a depth-first search in id order that do not close a cycle.
fn acyclic_edges(by_id: &[usize], out: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let n = out.len();
    let mut mark = vec![Mark::New; n];
    let mut dag = vec![Vec::new(); n];
    for &root in by_id {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next child index).
        let mut stack = vec![(root, 0usize)];
        mark[root] = Mark::Active;
        while let Some(&mut (v, ref mut k)) = stack.last_mut() {
            if *k < out[v].len() {
                let w = out[v][*k];
                *k += 1;
                match mark[w] {
                    Mark::Active => {} // back edge: closes a cycle
                    Mark::Done => dag[v].push(w),
                    Mark::New => {
                        dag[v].push(w);
                        mark[w] = Mark::Active;
                        stack.push((w, 0));
                    }
                }
            } else {
                mark[v] = Mark::Done;
                stack.pop();
            }
        }
    }
    dag
}

/// Longest path from any source, over an acyclic edge set (Kahn's order).
fn longest_path_layers(by_id: &[usize], dag: &[Vec<usize>], n: usize) -> Vec<usize> {
    let mut indeg = vec![0usize; n];
    for list in dag {
        for &w in list {
            indeg[w] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> =
        by_id.iter().copied().filter(|&i| indeg[i] == 0).collect();
    while let Some(v) = queue.pop_front() {
        for &w in &dag[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                queue.push_back(w);
            }
        }
    }
    layer
}

/// The SVG path of an edge from the right side of `a` to the left side of `b`; edges that go
/// backwards or stay in a column bend around so they remain visible.
pub fn edge_path(a: &Placed, b: &Placed) -> String {
    let (x1, y1) = (a.x + NODE_W, a.y + NODE_H / 2.0);
    let (x2, y2) = (b.x, b.y + NODE_H / 2.0);
    if x2 > x1 {
        let dx = (x2 - x1) / 2.0;
        format!(
            "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
            x1 + dx,
            x2 - dx
        )
    } else {
        let bend = 60.0 + (y2 - y1).abs() * 0.15;
        format!(
            "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
            x1 + bend,
            x2 - bend
        )
    }
}

/// The middle of [`edge_path`] (the curve's point at t = ½), where a count label goes.
pub fn edge_mid(a: &Placed, b: &Placed) -> (f64, f64) {
    (
        (a.x + NODE_W + b.x) / 2.0,
        (a.y + b.y) / 2.0 + NODE_H / 2.0 - 4.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(ids: &[(&str, &str)]) -> Vec<Node> {
        ids.iter()
            .map(|(g, id)| Node {
                id: format!("{g}/{id}"),
                group: g.to_string(),
            })
            .collect()
    }

    #[test]
    fn callers_sit_left_of_their_callees_by_longest_path() {
        let nodes = mk(&[("a", "web"), ("a", "cart"), ("b", "auth"), ("b", "db")]);
        // web → cart → auth → db, and web → db directly: db stays at the longest path.
        let l = layout(&nodes, &[(0, 1), (1, 2), (2, 3), (0, 3)]);
        let layers: Vec<usize> = l.nodes.iter().map(|p| p.layer).collect();
        assert_eq!(layers, vec![0, 1, 2, 3]);
        assert!(l.nodes[0].x < l.nodes[1].x && l.nodes[2].x < l.nodes[3].x);
    }

    #[test]
    fn cycles_do_not_loop_and_every_node_is_placed() {
        let nodes = mk(&[("a", "x"), ("a", "y"), ("a", "z")]);
        let l = layout(&nodes, &[(0, 1), (1, 2), (2, 0), (1, 1)]);
        let mut layers: Vec<usize> = l.nodes.iter().map(|p| p.layer).collect();
        layers.sort();
        assert_eq!(layers, vec![0, 1, 2]);
    }

    #[test]
    fn groups_are_disjoint_bands_that_contain_their_nodes() {
        let nodes = mk(&[
            ("storefront", "web"),
            ("checkout", "checkout"),
            ("checkout", "payments"),
            ("storefront", "cart"),
            ("platform", "auth"),
        ]);
        let l = layout(&nodes, &[(0, 1), (1, 2), (0, 3), (3, 4)]);
        let names: Vec<&str> = l.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["checkout", "platform", "storefront"]);
        for w in l.groups.windows(2) {
            assert!(w[0].y + w[0].h < w[1].y, "bands overlap: {w:?}");
        }
        for (node, p) in nodes.iter().zip(&l.nodes) {
            let g = l.groups.iter().find(|g| g.name == node.group).unwrap();
            assert!(
                p.x >= g.x && p.x + NODE_W <= g.x + g.w,
                "{node:?} outside its box"
            );
            assert!(
                p.y >= g.y && p.y + NODE_H <= g.y + g.h,
                "{node:?} outside its box"
            );
        }
        assert!(l.width >= l.groups.iter().map(|g| g.x + g.w).fold(0.0, f64::max));
    }

    #[test]
    fn the_same_graph_in_another_order_gives_the_same_positions() {
        let nodes = mk(&[("a", "p"), ("a", "q"), ("b", "r"), ("b", "s"), ("a", "t")]);
        let edges = [(0, 2), (1, 3), (0, 3), (4, 2)];
        let l1 = layout(&nodes, &edges);
        // Reverse the node order and remap the edges.
        let rev: Vec<Node> = nodes.iter().rev().cloned().collect();
        let m = |i: usize| nodes.len() - 1 - i;
        let redges: Vec<(usize, usize)> = edges.iter().rev().map(|&(a, b)| (m(a), m(b))).collect();
        let l2 = layout(&rev, &redges);
        for i in 0..nodes.len() {
            assert_eq!(l1.nodes[i], l2.nodes[m(i)]);
        }
        assert_eq!(l1.groups, l2.groups);
    }

    #[test]
    fn barycenter_ordering_uncrosses_parallel_calls() {
        // Two callers a1, a2 (a1 first by id) calling b2 and b1 respectively: the callees follow
        // their callers' order instead of the id order, so the edges do not cross.
        let nodes = mk(&[("g", "a1"), ("g", "a2"), ("g", "b1"), ("g", "b2")]);
        let l = layout(&nodes, &[(0, 3), (1, 2)]);
        assert!(l.nodes[3].y < l.nodes[2].y);
    }

    #[test]
    fn adding_an_edge_elsewhere_keeps_unrelated_bands_in_place() {
        let nodes = mk(&[("a", "x"), ("a", "y"), ("z", "p"), ("z", "q")]);
        let before = layout(&nodes, &[(0, 1), (2, 3)]);
        let after = layout(&nodes, &[(0, 1), (2, 3), (3, 2)]);
        assert_eq!(before.nodes[0], after.nodes[0]);
        assert_eq!(before.nodes[1], after.nodes[1]);
        assert_eq!(before.groups[0], after.groups[0]);
    }

    #[test]
    fn a_large_graph_is_laid_out_quickly_and_within_bounds() {
        let mut nodes = Vec::new();
        for i in 0..1500 {
            nodes.push(Node {
                id: format!("ns{:02}/w{i:04}", i % 30),
                group: format!("ns{:02}", i % 30),
            });
        }
        let edges: Vec<(usize, usize)> = (0..9300)
            .map(|k| ((k * 7919) % 1500, (k * 104_729 + 13) % 1500))
            .collect();
        let start = std::time::Instant::now();
        let l = layout(&nodes, &edges);
        assert!(start.elapsed().as_secs_f64() < 5.0);
        assert!(
            l.nodes
                .iter()
                .all(|p| p.x + NODE_W <= l.width && p.y + NODE_H <= l.height)
        );
    }

    #[test]
    fn edge_paths_start_at_the_caller_and_end_at_the_callee() {
        let a = Placed {
            x: 0.0,
            y: 0.0,
            layer: 0,
        };
        let b = Placed {
            x: 300.0,
            y: 100.0,
            layer: 1,
        };
        let p = edge_path(&a, &b);
        assert!(
            p.starts_with(&format!("M{:.1},{:.1}", NODE_W, NODE_H / 2.0)),
            "{p}"
        );
        assert!(
            p.ends_with(&format!("300.0,{:.1}", 100.0 + NODE_H / 2.0)),
            "{p}"
        );
    }
}
