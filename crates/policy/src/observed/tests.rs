use super::*;
use crate::identity::WorkloadId;
use crate::objects::Protocol;

const S: i64 = 1_000_000_000;

fn ep(ns: &str, workload: &str, pod: &str) -> Endpoint {
    Endpoint {
        identity: 12345,
        namespace: ns.into(),
        labels: vec![format!("k8s:app={workload}")],
        pod_name: pod.into(),
        workloads: vec![EndpointWorkload {
            name: workload.into(),
            kind: "Deployment".into(),
        }],
    }
}

fn reserved(identity: u32, label: &str) -> Endpoint {
    Endpoint {
        identity,
        labels: vec![label.into()],
        ..Endpoint::default()
    }
}

fn tcp(port: u16, syn: bool, ack: bool) -> Option<L4> {
    Some(L4::Tcp {
        source_port: 40000,
        destination_port: port,
        flags: Some(TcpFlags {
            syn,
            ack,
            ..TcpFlags::default()
        }),
    })
}

fn mk_flow(src: Option<Endpoint>, dst: Option<Endpoint>, port: u16, time: i64) -> Flow {
    Flow {
        time,
        verdict: Verdict::Forwarded,
        flow_type: FlowType::L3L4,
        source_ip: "10.0.0.1".into(),
        destination_ip: "10.0.0.2".into(),
        l4: tcp(port, true, false),
        source: src,
        destination: dst,
        is_reply: Some(false),
        ..Flow::default()
    }
}

fn wid(ns: &str, name: &str) -> WorkloadId {
    WorkloadId::new(ns, name, Some("Deployment"))
}

fn call_key(client: &str, server: &str, port: u16) -> Key {
    Key {
        class: Class::Call,
        client: Party::Workload {
            workload: wid("shop", client),
        },
        server: Party::Workload {
            workload: wid("shop", server),
        },
        protocol: Protocol::Tcp,
        port,
    }
}

#[test]
fn a_call_is_keyed_by_workloads_and_aggregated() {
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    let web = ep("shop", "web", "web-1");
    let api = ep("shop", "api", "api-7");
    obs.ingest(
        &mk_flow(Some(web.clone()), Some(api.clone()), 8080, 10 * S),
        &ips,
    );
    let mut dropped = mk_flow(Some(web), Some(api), 8080, 5 * S);
    dropped.verdict = Verdict::Dropped;
    obs.ingest(&dropped, &ips);
    let agg = obs.get(&call_key("web", "api", 8080)).expect("observed");
    assert_eq!(
        (agg.first_seen, agg.last_seen, agg.count),
        (5 * S, 10 * S, 2)
    );
    assert_eq!((agg.forwarded, agg.dropped, agg.audit), (1, 1, 0));
    assert_eq!(obs.len(), 1);
    assert_eq!(obs.latest, 10 * S);
}

#[test]
fn replies_are_not_calls() {
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    // The answer from api to web, flagged by Hubble.
    let mut reply = mk_flow(
        Some(ep("shop", "api", "api-7")),
        Some(ep("shop", "web", "web-1")),
        40000,
        S,
    );
    reply.is_reply = Some(true);
    assert_eq!(obs.ingest(&reply, &ips), Ingested::Reply);
    // Without is_reply, a SYN+ACK is the answer too.
    reply.is_reply = None;
    reply.l4 = tcp(40000, true, true);
    assert_eq!(obs.ingest(&reply, &ips), Ingested::Reply);
    // Without is_reply or flags, a forwarded segment tells nothing.
    reply.l4 = tcp(40000, false, true);
    assert_eq!(obs.ingest(&reply, &ips), Ingested::NoDirection);
    assert!(obs.is_empty());
    assert_eq!(obs.skipped.replies, 2);
    assert_eq!(obs.skipped.no_direction, 1);
}

#[test]
fn probes_dns_host_network_and_external_are_classified_apart() {
    let mut ips = IpHistory::new();
    ips.record(PodLifetime {
        ip: "192.168.1.10".into(),
        namespace: "monitoring".into(),
        pod: "node-exporter-abc".into(),
        workload: WorkloadId::new("monitoring", "node-exporter", Some("DaemonSet")),
        host_network: true,
        from: 0,
        until: None,
    });
    let mut obs = Observations::new();
    let web = ep("shop", "web", "web-1");
    let probe = mk_flow(
        Some(reserved(1, "reserved:host")),
        Some(web.clone()),
        8080,
        S,
    );
    assert_eq!(
        obs.ingest(&probe, &ips),
        Ingested::Counted(Class::HostProbe)
    );
    let mut dns_ep = ep("kube-system", "coredns", "coredns-1");
    dns_ep.labels = vec!["k8s:k8s-app=kube-dns".into()];
    let mut dns = mk_flow(Some(web.clone()), Some(dns_ep), 53, S);
    dns.l4 = Some(L4::Udp {
        source_port: 5353,
        destination_port: 53,
    });
    assert_eq!(obs.ingest(&dns, &ips), Ingested::Counted(Class::Dns));
    let mut hostnet_ep = reserved(1, "reserved:host");
    hostnet_ep.namespace = "monitoring".into();
    hostnet_ep.pod_name = "node-exporter-abc".into();
    let scrape = mk_flow(Some(hostnet_ep), Some(web.clone()), 9100, S);
    assert_eq!(
        obs.ingest(&scrape, &ips),
        Ingested::Counted(Class::HostNetwork)
    );
    let mut out = mk_flow(Some(web), Some(reserved(2, "reserved:world")), 443, S);
    out.destination_names = vec!["api.stripe.com".into()];
    assert_eq!(obs.ingest(&out, &ips), Ingested::Counted(Class::Call));
    let keys: Vec<_> = obs.sorted().into_iter().map(|(k, _)| k.clone()).collect();
    assert!(keys.iter().any(|k| k.class == Class::Call
        && k.server
            == Party::External {
                address: "api.stripe.com".into()
            }));
    assert_eq!(
        keys.iter().filter(|k| k.class == Class::HostProbe).count(),
        1
    );
}

#[test]
fn a_reused_pod_ip_resolves_to_the_workload_that_held_it_at_the_time() {
    let mut ips = IpHistory::new();
    ips.record(PodLifetime {
        ip: "10.0.0.9".into(),
        namespace: "shop".into(),
        pod: "cart-1".into(),
        workload: wid("shop", "cart"),
        host_network: false,
        from: 0,
        until: Some(100 * S),
    });
    ips.record(PodLifetime {
        ip: "10.0.0.9".into(),
        namespace: "shop".into(),
        pod: "search-4".into(),
        workload: wid("shop", "search"),
        host_network: false,
        from: 120 * S,
        until: None,
    });
    assert_eq!(
        ips.resolve_ip("10.0.0.9", 50 * S),
        Some(&wid("shop", "cart"))
    );
    assert_eq!(
        ips.resolve_ip("10.0.0.9", 130 * S),
        Some(&wid("shop", "search"))
    );
    // Between the tenures nobody held it: never the wrong workload.
    assert_eq!(ips.resolve_ip("10.0.0.9", 110 * S), None);
    assert_eq!(ips.resolve_ip("10.0.0.9", 0), None, "two tenures, no time");

    let mut obs = Observations::new();
    let mut f = mk_flow(Some(ep("shop", "web", "web-1")), None, 8080, 130 * S);
    f.destination_ip = "10.0.0.9".into();
    obs.ingest(&f, &ips);
    f.time = 110 * S;
    assert_eq!(obs.ingest(&f, &ips), Ingested::Counted(Class::Unresolved));
    assert!(obs.get(&call_key("web", "search", 8080)).is_some());
    assert!(obs.get(&call_key("web", "cart", 8080)).is_none());

    // Past the retention horizon the deleted pod is forgotten, by address and by name; the
    // running one stays.
    assert_eq!((ips.len(), ips.pods()), (2, 2));
    ips.forget_before(100 * S);
    assert_eq!(
        (ips.len(), ips.pods()),
        (2, 2),
        "cart-1 ended exactly at the horizon"
    );
    ips.forget_before(101 * S);
    assert_eq!((ips.len(), ips.pods()), (1, 1));
    assert_eq!(ips.resolve_ip("10.0.0.9", 50 * S), None);
    assert_eq!(ips.resolve_pod("shop", "cart-1"), None);
    assert_eq!(
        ips.resolve_pod("shop", "search-4"),
        Some(&wid("shop", "search"))
    );
}

#[test]
fn coverage_is_complete_only_while_connected_and_without_losses() {
    let mut c = Coverage::default();
    c.connected(0, 600 * S);
    c.connected(700 * S, 1000 * S);
    c.connected(900 * S, 1200 * S);
    assert_eq!(c.intervals, vec![(0, 600 * S), (700 * S, 1200 * S)]);
    assert!(c.complete(10 * S, 500 * S));
    assert!(!c.complete(500 * S, 800 * S), "a gap");
    c.lost(800 * S, 3);
    assert!(!c.complete(700 * S, 1100 * S));
    assert_eq!(c.lost_total(), 3);
    // Complete since the minute after the loss.
    assert_eq!(c.complete_since(1100 * S), Some(840 * S));
    assert_eq!(c.complete_since(650 * S), None, "not connected then");
}

#[test]
fn rfc3339_round_trips() {
    let t = parse_rfc3339("2026-11-30T06:00:01.5Z").unwrap();
    assert_eq!(format_rfc3339(t), "2026-11-30T06:00:01.5Z");
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_rfc3339("1970-01-01T01:00:00+01:00"),
        Some(0),
        "offsets"
    );
    assert_eq!(parse_rfc3339("nonsense"), None);
}

#[test]
fn suggestions_merge_with_current_intents_and_skip_declared_calls() {
    let text = r#"
apiVersion: k8s.otterize.com/v2beta1
kind: ClientIntents
metadata: {name: web, namespace: shop}
spec:
  workload: {name: web}
  targets:
  - kubernetes: {name: api, kind: Deployment}
"#;
    let (inv, diags) = crate::load(&[crate::Source {
        path: "intents.yaml".into(),
        text: text.into(),
    }]);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let mut obs = Observations::new();
    let ips = IpHistory::new();
    for (client, server, port) in [
        ("web", "api", 8080),
        ("web", "cart", 7000),
        ("web", "cart", 7001),
    ] {
        obs.ingest(
            &mk_flow(
                Some(ep("shop", client, "c")),
                Some(ep("shop", server, "s")),
                port,
                S,
            ),
            &ips,
        );
    }
    // api has no outgoing calls: nothing is suggested for it.
    let suggestions = suggest(obs.sorted(), &inv, 0);
    assert_eq!(suggestions.len(), 1);
    let s = &suggestions[0];
    assert_eq!(s.client, wid("shop", "web"));
    assert_eq!(
        s.added.len(),
        2,
        "both cart ports, not the declared api call"
    );
    assert_eq!(s.suggested.targets.len(), 2, "api kept, cart added once");
    assert_eq!(
        s.suggested.targets[0],
        s.current.as_ref().unwrap().targets[0]
    );
    let yaml = crate::render::intents_yaml(std::slice::from_ref(&s.suggested));
    assert!(yaml.contains("name: api"), "{yaml}");
    assert!(yaml.contains("name: cart"), "{yaml}");
    assert!(yaml.contains("7001"), "{yaml}");
}

fn deployment(name: &str) -> String {
    format!(
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: c
        image: x
        ports: [{{containerPort: 8080}}]
"#
    )
}

#[test]
fn undeclared_callers_would_be_blocked_once_the_server_is_protected() {
    let text = format!(
        "{}{}{}---
apiVersion: k8s.otterize.com/v2beta1
kind: ClientIntents
metadata: {{name: web, namespace: shop}}
spec:
  workload: {{name: web, kind: Deployment}}
  targets:
  - kubernetes: {{name: api, kind: Deployment}}
",
        deployment("web"),
        deployment("api"),
        deployment("cart")
    );
    let (inv, diags) = crate::load(&[crate::Source::new("shop.yaml", text)]);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    for client in ["web", "cart"] {
        obs.ingest(
            &mk_flow(
                Some(ep("shop", client, "p")),
                Some(ep("shop", "api", "a")),
                8080,
                S,
            ),
            &ips,
        );
    }
    let mut dropped = mk_flow(
        Some(ep("shop", "cart", "p")),
        Some(ep("shop", "web", "w")),
        8080,
        S,
    );
    dropped.verdict = Verdict::Dropped;
    obs.ingest(&dropped, &ips);
    let calls = obs.sorted();
    let keys: Vec<&Key> = calls.iter().map(|(k, _)| *k).collect();
    let generated = crate::generate(&inv, &crate::GenerateOptions::default());
    let servers = keys
        .iter()
        .filter_map(|k| k.server.workload().cloned())
        .collect();
    let protected = protected_inventory(&inv, &generated, &servers);
    let now = allowed(&crate::Evaluator::new(&inv), &keys);
    let later = allowed(&crate::Evaluator::new(&protected), &keys);
    let assessed = assess(&calls, &inv, &now, &later);
    let state_of = |client: &str, server: &str| {
        let i = keys
            .iter()
            .position(|k| *k == &call_key(client, server, 8080))
            .unwrap();
        (
            assessed[i].state,
            assessed[i].allowed_now,
            assessed[i].allowed_when_protected,
        )
    };
    assert_eq!(
        state_of("web", "api"),
        (ObservedState::Declared, Some(true), Some(true))
    );
    assert_eq!(
        state_of("cart", "api"),
        (ObservedState::Undeclared, Some(true), Some(false))
    );
    // Hubble saw cart → web dropped: an incident, whatever the evaluation says.
    assert_eq!(state_of("cart", "web").0, ObservedState::Dropped);

    // The drift items: cart's undeclared call (its fix the suggested intents), the dropped
    // edge, and, over a window with full coverage, web → cart declared but never observed.
    let with: Vec<(&Key, &Aggregate, &Assessment)> = calls
        .iter()
        .zip(&assessed)
        .map(|((k, a), s)| (*k, *a, s))
        .collect();
    let suggestions = suggest(calls.iter().copied(), &inv, 0);
    let declared = vec![
        DeclaredEdge {
            client: wid("shop", "web"),
            server: wid("shop", "api"),
            state: crate::drift::EdgeState::Enforced,
        },
        DeclaredEdge {
            client: wid("shop", "web"),
            server: wid("shop", "cart"),
            state: crate::drift::EdgeState::Unprotected,
        },
    ];
    let input = |window| ObservedInput {
        calls: &with,
        edge_state: &|_, _| Some(crate::drift::EdgeState::Open),
        suggestions: &suggestions,
        declared: &declared,
        complete_window: window,
    };
    let items = drift_items(&input(Some((0, 10 * S))));
    let keys: Vec<&str> = items.iter().map(|(i, _)| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "observed-dropped/shop/cart[Deployment]>shop/web[Deployment]",
            "observed-undeclared/shop/cart[Deployment]",
            "declared-unused/shop/web[Deployment]>shop/cart[Deployment]",
        ],
        "worst first, one per cause"
    );
    let (dropped, first) = &items[0];
    assert_eq!(dropped.severity, crate::drift::DriftSeverity::High);
    assert_eq!(*first, S);
    let (undeclared, _) = &items[1];
    assert_eq!(undeclared.severity, crate::drift::DriftSeverity::Medium);
    let fix = undeclared.fix.as_ref().expect("a fix");
    assert_eq!(fix.kind, crate::drift::FixKind::Intents);
    assert_eq!(fix.draft.len(), 1);
    assert!(fix.yaml.contains("name: api"), "{}", fix.yaml);
    let (unused, since) = &items[2];
    assert_eq!(unused.severity, crate::drift::DriftSeverity::Low);
    assert_eq!(*since, 0);
    assert!(
        unused.explanation.contains("full coverage"),
        "{}",
        unused.explanation
    );
    // Without a complete window nothing is claimed unused.
    let items = drift_items(&input(None));
    assert!(
        items
            .iter()
            .all(|(i, _)| i.kind != crate::drift::DriftKind::DeclaredUnused)
    );
    // New flows of the same calls keep the fingerprints (acknowledgements hold).
    let mut more = calls.iter().map(|(k, a)| (*k, **a)).collect::<Vec<_>>();
    for (_, a) in &mut more {
        a.count += 5;
    }
    let with2: Vec<(&Key, &Aggregate, &Assessment)> = more
        .iter()
        .zip(&assessed)
        .map(|((k, a), s)| (*k, a, s))
        .collect();
    let again = drift_items(&ObservedInput {
        calls: &with2,
        ..input(None)
    });
    assert_eq!(
        again
            .iter()
            .map(|(i, _)| &i.fingerprint)
            .collect::<Vec<_>>(),
        items
            .iter()
            .map(|(i, _)| &i.fingerprint)
            .collect::<Vec<_>>()
    );
}

/// The same connection as Hubble reports it at one end: web (10.0.0.1:40000) → api
/// (10.0.0.2:8080).
fn at_end(direction: TrafficDirection, verdict: Verdict, time: i64) -> Flow {
    let mut f = mk_flow(
        Some(ep("shop", "web", "web-1")),
        Some(ep("shop", "api", "api-7")),
        8080,
        time,
    );
    f.traffic_direction = direction;
    f.verdict = verdict;
    f
}

fn counts(obs: &Observations) -> (u64, u64, u64) {
    let a = obs.get(&call_key("web", "api", 8080)).expect("observed");
    (a.count, a.forwarded, a.dropped)
}

#[test]
fn a_call_reported_at_both_ends_counts_once() {
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    use TrafficDirection::{Egress, Ingress};
    assert_eq!(
        obs.ingest(&at_end(Egress, Verdict::Forwarded, 10 * S), &ips),
        Ingested::Counted(Class::Call)
    );
    assert_eq!(
        obs.ingest(&at_end(Ingress, Verdict::Forwarded, 10 * S + 300), &ips),
        Ingested::OtherEnd(Class::Call)
    );
    assert_eq!(counts(&obs), (1, 1, 0));
    assert_eq!(obs.waiting(), 0);
    // Reported at the server's end first (the nodes' clocks differ): still one call.
    let mut obs = Observations::new();
    obs.ingest(&at_end(Ingress, Verdict::Forwarded, 20 * S), &ips);
    obs.ingest(&at_end(Egress, Verdict::Forwarded, 20 * S + 5), &ips);
    assert_eq!(counts(&obs), (1, 1, 0));
    assert_eq!(obs.skipped.same_call, 1);
}

#[test]
fn a_call_forwarded_by_the_client_s_end_and_dropped_by_the_server_s_is_one_drop() {
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    use TrafficDirection::{Egress, Ingress};
    obs.ingest(&at_end(Egress, Verdict::Forwarded, 10 * S), &ips);
    obs.ingest(&at_end(Ingress, Verdict::Dropped, 10 * S + 200), &ips);
    // The client retries with the same port a second later: a second attempt, dropped again.
    obs.ingest(&at_end(Egress, Verdict::Forwarded, 11 * S), &ips);
    obs.ingest(&at_end(Ingress, Verdict::Dropped, 11 * S + 200), &ips);
    assert_eq!(counts(&obs), (2, 0, 2));
    let a = obs.get(&call_key("web", "api", 8080)).unwrap();
    assert_eq!((a.first_seen, a.last_seen), (10 * S, 11 * S));
}

#[test]
fn a_call_whose_server_end_never_reports_counts_once_the_window_passes() {
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    obs.ingest(
        &at_end(TrafficDirection::Egress, Verdict::Forwarded, 10 * S),
        &ips,
    );
    assert_eq!(obs.waiting(), 1);
    assert!(obs.get(&call_key("web", "api", 8080)).is_none());
    // A live collector settles by the clock even when no other flow comes.
    obs.settle_before(12 * S);
    assert_eq!(obs.waiting(), 1, "still within the pairing window");
    obs.settle_before(16 * S);
    assert_eq!(obs.waiting(), 0);
    assert_eq!(counts(&obs), (1, 1, 0));
    // The end of a recording settles everything.
    let mut obs = Observations::new();
    obs.ingest(
        &at_end(TrafficDirection::Egress, Verdict::Forwarded, 10 * S),
        &ips,
    );
    obs.settle();
    assert_eq!(counts(&obs), (1, 1, 0));
    // A drop at the client's end is final at once.
    let mut obs = Observations::new();
    obs.ingest(
        &at_end(TrafficDirection::Egress, Verdict::Dropped, 10 * S),
        &ips,
    );
    assert_eq!(counts(&obs), (1, 0, 1));
}

#[test]
fn later_segments_of_a_connection_are_seen_not_counted() {
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    obs.ingest(
        &at_end(TrafficDirection::Unknown, Verdict::Forwarded, 10 * S),
        &ips,
    );
    let mut ack = at_end(TrafficDirection::Unknown, Verdict::Forwarded, 70 * S);
    ack.l4 = tcp(8080, false, true);
    assert_eq!(obs.ingest(&ack, &ips), Ingested::Continued(Class::Call));
    let a = obs.get(&call_key("web", "api", 8080)).unwrap();
    assert_eq!((a.count, a.first_seen, a.last_seen), (1, 10 * S, 70 * S));
    // Observation that began mid-connection: seen (its times kept), no call counted.
    let mut obs = Observations::new();
    obs.ingest(&ack, &ips);
    let drained = obs.drain();
    assert_eq!(drained.len(), 1);
    assert_eq!((drained[0].1.count, drained[0].1.last_seen), (0, 70 * S));
    let mut merged = Observations::new();
    merged.merge(drained[0].0.clone(), &drained[0].1);
    assert_eq!(merged.get(&drained[0].0).unwrap().last_seen, 70 * S);
}

#[test]
fn a_service_target_without_ports_declares_the_ports_the_service_forwards_to() {
    // web declares the api Service, which forwards port 80 to the pods' port named `http`
    // (8080): a call on 8080 is declared, one on 9090 is not (the policy generated for the
    // Service admits 8080 only).
    let text = format!(
        "{}{}---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: shop}}
spec:
  selector: {{app: api}}
  ports: [{{name: web, port: 80, targetPort: http}}]
---
apiVersion: k8s.otterize.com/v2beta1
kind: ClientIntents
metadata: {{name: web, namespace: shop}}
spec:
  workload: {{name: web, kind: Deployment}}
  targets:
  - service: {{name: api}}
",
        deployment("web"),
        deployment("api").replace("{containerPort: 8080}", "{name: http, containerPort: 8080}")
    );
    let (inv, diags) = crate::load(&[crate::Source::new("shop.yaml", text)]);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    assert!(declares(&inv, &call_key("web", "api", 8080)));
    assert!(!declares(&inv, &call_key("web", "api", 9090)));
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    for port in [8080, 9090] {
        obs.ingest(
            &mk_flow(
                Some(ep("shop", "web", "w")),
                Some(ep("shop", "api", "a")),
                port,
                S,
            ),
            &ips,
        );
    }
    let s = suggest(obs.sorted(), &inv, 0);
    assert_eq!(s.len(), 1);
    let added: Vec<u16> = s[0].added.iter().map(|a| a.port).collect();
    assert_eq!(
        added,
        vec![9090],
        "only the port the Service does not forward to"
    );
}
