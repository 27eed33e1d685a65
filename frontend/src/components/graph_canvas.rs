//! The SVG drawing of a scene, with pan (drag) and zoom (wheel, buttons), fitted to the view
//! whenever the scene changes. Every node and edge carries a stable `data-testid`.

use leptos::html;
use leptos::prelude::*;

use crate::layout::{NODE_H, NODE_W};
use crate::scene::{NodeKind, Scene, badge, colour};

/// The smallest zoom: small enough that "fit" shows a whole drawing of 1,500 workloads (about
/// 30,000 px wide) as an overview to zoom into.
const MIN_SCALE: f64 = 0.01;

/// The smallest zoom "fit" chooses for a namespace's drawing: labels (12.5 px) stay 9 px high.
/// Other drawings (a neighbourhood, a small estate) may shrink to 0.62 to be seen whole.
const READABLE_SCALE: f64 = 0.72;

#[derive(Clone, Copy, Debug, PartialEq)]
struct View {
    x: f64,
    y: f64,
    k: f64,
}

#[component]
pub fn GraphCanvas(
    #[prop(into)] scene: Signal<Scene>,
    #[prop(into)] selected: Signal<Option<String>>,
    #[prop(into)] highlight_edge: Signal<Option<String>>,
    /// Edges (and bundles, `srcNS->dstNS`) an update just changed: they pulse for a while.
    #[prop(into)]
    changed: Signal<Vec<String>>,
    on_node: Callback<String>,
    on_edge: Callback<(String, String)>,
) -> impl IntoView {
    let svg_ref = NodeRef::<html::Div>::new();
    let view_tf = RwSignal::new(View {
        x: 0.0,
        y: 0.0,
        k: 1.0,
    });
    let drag = StoredValue::new(None::<(f64, f64, View)>);
    // Pan and zoom move the whole <svg> with a CSS transform. While it moves it is its own
    // compositor layer (`will-change`), so a frame re-composites instead of repainting thousands
    // of paths; 250 ms after the last move the layer is dropped and repainted sharp at the new
    // scale.
    let moving = RwSignal::new(false);
    let moves = StoredValue::new(0u32);
    Effect::new(move |previous: Option<()>| {
        view_tf.track();
        if previous.is_none() {
            return;
        }
        moving.set(true);
        moves.update_value(|n| *n = n.wrapping_add(1));
        let this = moves.get_value();
        let Some(w) = web_sys::window() else { return };
        let cb = wasm_bindgen::closure::Closure::once_into_js(move || {
            if moves.try_get_value() == Some(this) {
                moving.set(false);
            }
        });
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
            wasm_bindgen::JsCast::unchecked_ref(&cb),
            250,
        );
    });

    // Fitting shrinks a drawing no further than labels stay readable (a readable set is what
    // gets drawn); a larger one starts at its top left, to pan from.
    let fit = move || {
        let (sw, sh) = scene.with_untracked(|s| (s.width, s.height));
        let Some(el) = svg_ref.get_untracked() else {
            return;
        };
        let rect = el.get_bounding_client_rect();
        let (w, h) = (rect.width().max(200.0), rect.height().max(200.0));
        let fits = (w / sw).min(h / sh);
        let least = if scene.with_untracked(|s| s.bundles.is_empty()) {
            0.62
        } else {
            READABLE_SCALE
        };
        let k = fits.clamp(least, 1.25);
        if fits >= least {
            view_tf.set(View {
                x: ((w - sw * k) / 2.0).max(0.0),
                y: ((h - sh * k) / 2.0).max(0.0),
                k,
            });
            return;
        }
        // Too large to fit readably: a namespace's drawing (worst boxes at the top) starts at
        // its top, centred across if it fits; others centre on their workloads.
        let (cx, cy, bundled) = scene.with_untracked(|s| {
            let ws: Vec<(f64, f64)> = s
                .nodes
                .iter()
                .filter(|n| n.kind == NodeKind::Workload)
                .map(|n| (n.x, n.y))
                .collect();
            let n = ws.len().max(1) as f64;
            let (x, y) = ws.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
            let c = if ws.is_empty() {
                (sw / 2.0, sh / 2.0)
            } else {
                (x / n + NODE_W / 2.0, y / n + NODE_H / 2.0)
            };
            (c.0, c.1, !s.bundles.is_empty())
        });
        view_tf.set(if bundled {
            View {
                x: if sw * k <= w {
                    (w - sw * k) / 2.0
                } else {
                    w / 2.0 - cx * k
                },
                y: 8.0,
                k,
            }
        } else {
            View {
                x: w / 2.0 - cx * k,
                y: h / 2.0 - cy * k,
                k,
            }
        });
    };
    // Refit when what is laid out changes, not when a filter only hides some of it.
    let extent = Memo::new(move |_| {
        scene.with(|s| {
            Some(format!(
                "{}x{}:{}:{}",
                s.width,
                s.height,
                s.nodes.len(),
                s.nodes.first().map_or("", |n| n.id.as_str())
            ))
        })
    });
    Effect::new(move |_| {
        extent.track();
        fit();
        crate::dom::mark_next_frame("accord-graph-painted");
    });
    // The selected node and its neighbours; the rest is dimmed.
    let near = Memo::new(move |_| {
        let sel = selected.get()?;
        scene.with(|s| {
            let i = s.nodes.iter().position(|n| n.id == sel)?;
            let mut set = std::collections::BTreeSet::from([i]);
            for e in &s.edges {
                if e.source == i {
                    set.insert(e.target);
                }
                if e.target == i {
                    set.insert(e.source);
                }
            }
            Some((i, set))
        })
    });
    // The panel opening beside the canvas must not hide the selection: once the canvas has its
    // new width, pan the selected node into view if it is not.
    Effect::new(move |_| {
        let Some((i, _)) = near.get() else { return };
        let Some((nx, ny)) = scene.with_untracked(|s| s.nodes.get(i).map(|n| (n.x, n.y))) else {
            return;
        };
        let Some(w) = web_sys::window() else { return };
        let cb = wasm_bindgen::closure::Closure::once_into_js(move || {
            let Some(el) = svg_ref.try_get_untracked().flatten() else {
                return;
            };
            let r = el.get_bounding_client_rect();
            let v = view_tf.get_untracked();
            let (x0, y0) = (v.x + nx * v.k, v.y + ny * v.k);
            let (x1, y1) = (x0 + NODE_W * v.k, y0 + NODE_H * v.k);
            if x0 < 8.0 || y0 < 8.0 || x1 > r.width() - 8.0 || y1 > r.height() - 8.0 {
                view_tf.set(View {
                    x: r.width() / 2.0 - (nx + NODE_W / 2.0) * v.k,
                    y: r.height() / 2.0 - (ny + NODE_H / 2.0) * v.k,
                    k: v.k,
                });
            }
        });
        let _ = w.request_animation_frame(wasm_bindgen::JsCast::unchecked_ref(&cb));
    });
    let zoom_at = move |factor: f64, cx: f64, cy: f64| {
        view_tf.update(|v| {
            let k = (v.k * factor).clamp(MIN_SCALE, 4.0);
            let f = k / v.k;
            v.x = cx - (cx - v.x) * f;
            v.y = cy - (cy - v.y) * f;
            v.k = k;
        });
    };
    let zoom_center = move |factor: f64| {
        if let Some(el) = svg_ref.get_untracked() {
            let r = el.get_bounding_client_rect();
            zoom_at(factor, r.width() / 2.0, r.height() / 2.0);
        }
    };

    let nodes = move || {
        let s = scene.get();
        s.nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let id = n.id.clone();
                let id_sel = n.id.clone();
                let id_key = n.id.clone();
                let ns = n.kind == NodeKind::Namespace;
                let testid = if ns {
                    format!("ns-{}", n.id)
                } else {
                    format!("node-{}", n.id)
                };
                let label = if n.label.chars().count() > 20 {
                    format!("{}…", n.label.chars().take(19).collect::<String>())
                } else {
                    n.label.clone()
                };
                view! {
                    <g
                        class="node"
                        class:namespace=ns
                        class:selected=move || selected.get().as_deref() == Some(id_sel.as_str())
                        class:near=move || near.with(|n| n.as_ref().is_some_and(|(_, set)| set.contains(&i)))
                        class:faded=n.faded
                        data-testid=testid
                        data-id=n.id.clone()
                        tabindex="0"
                        role="button"
                        aria-label=if ns { format!("namespace {} ({})", n.label, n.detail) } else { n.id.clone() }
                        transform=format!("translate({:.1},{:.1})", n.x, n.y)
                        on:click=move |_| on_node.run(id.clone())
                        on:keydown=move |ev| {
                            if ev.key() == "Enter" || ev.key() == " " {
                                ev.prevent_default();
                                on_node.run(id_key.clone());
                            }
                        }
                    >
                        <title>{format!("{} — {}", n.id, n.detail)}</title>
                        <rect class="node-box" width=NODE_W height=NODE_H rx="7"></rect>
                        <text class="node-label" x="10" y="19">{label}</text>
                        <text class="node-detail" x={NODE_W - 8.0} y="19" text-anchor="end">
                            {if ns { n.detail.split(' ').next().unwrap_or_default().to_string() } else { String::new() }}
                        </text>
                        {(n.drift > 0).then(|| view! {
                            <circle class="drift-dot" cx={NODE_W - 2.0} cy="2" r="3.5"><title>{format!("{} drift item(s)", n.drift)}</title></circle>
                        })}
                    </g>
                }
            })
            .collect_view()
    };
    // (Re-drawn when an update marks changed calls: rare, and cheaper in WASM than a reactive
    // class per edge.)
    let edges = move || {
        let s = scene.get();
        let changed_now = changed.get();
        s.edges
            .iter()
            .map(|e| {
                let src = s.nodes[e.source].id.clone();
                let dst = s.nodes[e.target].id.clone();
                let id = format!("{src}->{dst}");
                let id2 = id.clone();
                let total = e.counts.total();
                let mut title = if total > 1 {
                    format!("{src} → {dst}: {total} calls, worst {}", e.state)
                } else {
                    format!("{src} → {dst}: {} {}", e.state, e.ports)
                };
                let obs = e.observed.clone();
                if let Some((_, note)) = &obs {
                    title = format!("{title} · {note}");
                }
                let mark = obs.as_ref().map(|(m, _)| m.clone());
                let mark_attr = mark.clone();
                let g_class = format!(
                    "edge-g state-{} obs-{}{}{}",
                    e.state,
                    mark.as_deref().unwrap_or("none"),
                    if changed_now.contains(&id) { " changed" } else { "" },
                    // A call inside a namespace's drawing: drawn lighter than the bundles.
                    if e.bundle.is_none() && !s.bundles.is_empty() { " internal" } else { "" }
                );
                let (a, b) = (e.source, e.target);
                let aria = title.clone();
                let (src2, dst2) = (src.clone(), dst.clone());
                let width = if total > 1 { 1.8 + (total as f64).ln().min(3.0) } else { 2.2 };
                view! {
                    <g
                        class=g_class
                        class:near=move || near.with(|n| n.as_ref().is_some_and(|(i, _)| *i == a || *i == b))
                        class:hl=move || highlight_edge.get().as_deref() == Some(id2.as_str())
                        data-testid=format!("edge-{id}")
                        data-state=e.state.as_str()
                        data-observed=mark_attr
                        tabindex="0"
                        role="button"
                        aria-label=aria
                        on:click=move |_| on_edge.run((src.clone(), dst.clone()))
                        on:keydown=move |ev| {
                            if ev.key() == "Enter" || ev.key() == " " {
                                ev.prevent_default();
                                on_edge.run((src2.clone(), dst2.clone()));
                            }
                        }
                    >
                        <path
                            class=format!("edge state-{}", e.state)
                            d=e.path.clone()
                            stroke=colour(e.state)
                            stroke-width=width
                            marker-end=format!("url(#arrow-{})", e.state)
                        ></path>
                        // A wide transparent stroke: clicks within a few pixels hit the edge.
                        <path class="edge-hit" d=e.path.clone()>
                            <title>{title}</title>
                        </path>
                        {(total > 1 && e.bundle.is_none()).then(|| {
                            let (lx, ly) = e.label_at;
                            view! { <text class="edge-count" x=lx y=ly text-anchor="middle">{total}</text> }
                        })}
                        {mark.filter(|m| !badge(m).is_empty() && e.bundle.is_none()).map(|m| {
                            let (x, y) = e.label_at;
                            view! {
                                <text class=format!("obs-badge obs-{m}") data-testid="obs-badge" x=x y={y + 4.0} text-anchor="middle">{badge(&m)}</text>
                            }
                        })}
                    </g>
                }
            })
            .collect_view()
    };
    // The count of each bundle, where its edges meet: a button listing the calls behind it.
    // One string of SVG rather than a view per bundle (smaller WASM); clicks and keys are
    // handled on the group ([`ends_at`]).
    let bundles = move || {
        let hl = highlight_edge.get();
        changed.with(|c| scene.with(|s| bundles_svg(&s.bundles, hl.as_deref(), c)))
    };
    let pick_bundle = move |t: Option<web_sys::EventTarget>| {
        if let Some(ends) = ends_at(t) {
            on_edge.run(ends);
        }
    };
    let groups = move || {
        scene
            .get()
            .groups
            .into_iter()
            .map(|g| {
                let testid = format!("group-{}", g.name);
                view! {
                    <g class="group" data-testid=testid>
                        <rect x=g.x y=g.y width=g.w height=g.h rx="12"></rect>
                        <text x={g.x + 12.0} y={g.y + 19.0}>{g.name}</text>
                    </g>
                }
            })
            .collect_view()
    };

    view! {
        <div
            class="canvas"
            node_ref=svg_ref
            on:wheel=move |ev: web_sys::WheelEvent| {
                ev.prevent_default();
                let Some(el) = svg_ref.get_untracked() else { return };
                let r = el.get_bounding_client_rect();
                let factor = (-ev.delta_y() * 0.0015).exp();
                zoom_at(factor, ev.client_x() as f64 - r.left(), ev.client_y() as f64 - r.top());
            }
            on:pointerdown=move |ev: web_sys::PointerEvent| {
                if ev.button() == 0 {
                    drag.set_value(Some((ev.client_x() as f64, ev.client_y() as f64, view_tf.get_untracked())));
                }
            }
            on:pointermove=move |ev: web_sys::PointerEvent| {
                if let Some((x0, y0, v0)) = drag.get_value() {
                    let (dx, dy) = (ev.client_x() as f64 - x0, ev.client_y() as f64 - y0);
                    if dx.abs() + dy.abs() > 3.0 {
                        view_tf.set(View { x: v0.x + dx, y: v0.y + dy, k: v0.k });
                    }
                }
            }
            on:pointerup=move |_| drag.set_value(None)
            on:pointerleave=move |_| drag.set_value(None)
        >
            <svg
                class="graph"
                class:moving=move || moving.get()
                class:has-sel=move || near.with(Option::is_some)
                data-testid="graph-svg"
                xmlns="http://www.w3.org/2000/svg"
                width=move || format!("{:.0}", scene.with(|s| s.width).max(1.0))
                height=move || format!("{:.0}", scene.with(|s| s.height).max(1.0))
                style=move || {
                    let v = view_tf.get();
                    format!("transform: translate({:.2}px, {:.2}px) scale({:.4})", v.x, v.y, v.k)
                }
                role="img"
                aria-label="Access graph"
            >
                <defs>
                    {accord_api::EdgeState::ALL
                        .into_iter()
                        .map(|s| view! {
                            <marker
                                id=format!("arrow-{s}")
                                viewBox="0 0 10 10"
                                refX="9"
                                refY="5"
                                markerWidth="8"
                                markerHeight="8"
                                markerUnits="userSpaceOnUse"
                                orient="auto-start-reverse"
                            >
                                <path d="M0,0 L10,5 L0,10 z" fill=colour(s)></path>
                            </marker>
                        })
                        .collect_view()}
                </defs>
                <g class="viewport" data-testid="viewport">
                    <g class="groups">{groups}</g>
                    <g class="edges">{edges}</g>
                    <g class="nodes">{nodes}</g>
                    <g
                        class="bundles"
                        inner_html=bundles
                        on:click=move |ev| pick_bundle(ev.target())
                        on:keydown=move |ev| {
                            if ev.key() == "Enter" || ev.key() == " " {
                                ev.prevent_default();
                                pick_bundle(ev.target());
                            }
                        }
                    ></g>
                </g>
            </svg>
            <div class="zoom-controls" role="group" aria-label="Zoom">
                <button class="btn icon" title="Zoom in" data-testid="zoom-in" on:click=move |_| zoom_center(1.25)>"+"</button>
                <button class="btn icon" title="Zoom out" data-testid="zoom-out" on:click=move |_| zoom_center(0.8)>"−"</button>
                <button class="btn icon" title="Fit to view" data-testid="zoom-fit" on:click=move |_| fit()>"⤢"</button>
            </div>
        </div>
    }
}

/// The bundles' counts as SVG: each a focusable button (`data-source`, `data-target`: the
/// namespaces) with the count, the observed badge and a title saying what it stands for.
fn bundles_svg(bundles: &[crate::scene::Bundle], hl: Option<&str>, changed: &[String]) -> String {
    use crate::scene::esc;
    use std::fmt::Write;
    let mut h = String::new();
    for b in bundles.iter().filter(|b| b.counts.total() > 0) {
        let key = format!("{}->{}", b.source, b.target);
        let total = b.counts.total();
        let mark = b.observed.as_ref().map_or("none", |(m, _)| m.as_str());
        let mut title = format!(
            "{} → {}: {total} call{}, worst {}",
            b.source,
            b.target,
            if total == 1 { "" } else { "s" },
            b.state
        );
        if let Some((_, words)) = &b.observed {
            title = format!("{title} · observed: {words}");
        }
        let label = format!("{total}{}", badge(mark));
        // Wide enough for the count and a badge.
        let w = 12 + 8 * label.chars().count();
        let (x, y) = (b.at.0 as i32, b.at.1 as i32);
        let _ = write!(
            h,
            r#"<g class="bundle state-{}{}{} obs-{mark}" data-testid="bundle-{k}" data-source="{s}" data-target="{t}"{obs} tabindex="0" role="button" aria-label="{title}"><title>{title}</title><rect x="{}" y="{}" width="{w}" height="17" rx="8.5" stroke="{}"></rect><text x="{x}" y="{y}" text-anchor="middle">{label}</text></g>"#,
            b.state,
            if hl == Some(key.as_str()) { " hl" } else { "" },
            if changed.contains(&key) {
                " changed"
            } else {
                ""
            },
            x - w as i32 / 2,
            y - 13,
            colour(b.state),
            k = esc(&key),
            s = esc(&b.source),
            t = esc(&b.target),
            title = esc(&title),
            obs = if mark == "none" {
                String::new()
            } else {
                format!(r#" data-observed="{mark}""#)
            },
        );
    }
    h
}

/// The ends (`data-source`, `data-target`) of the element an event landed on: a bundle's
/// namespaces, a toast's call.
pub fn ends_at(t: Option<web_sys::EventTarget>) -> Option<(String, String)> {
    let el: web_sys::Element = wasm_bindgen::JsCast::dyn_into(t?).ok()?;
    let g = el.closest("[data-source]").ok()??;
    Some((
        g.get_attribute("data-source")?,
        g.get_attribute("data-target")?,
    ))
}
