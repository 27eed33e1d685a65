//! The intent-drafting form's model: form fields → the core's ClientIntents model → YAML (by
//! the core's writer), with validation. Pure, tested natively.

use accord_policy::identity::WorkloadId;
use accord_policy::intents::{self, ClientIntents, TargetPort};
use accord_policy::objects::Protocol;

/// What a target points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Workload,
    Service,
    /// Addresses outside the cluster: the name holds domains and IPs/CIDRs, comma-separated.
    Internet,
}

impl TargetKind {
    /// As the form's select names it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Workload => "workload",
            TargetKind::Service => "service",
            TargetKind::Internet => "internet",
        }
    }

    pub fn parse(s: &str) -> TargetKind {
        match s {
            "service" => TargetKind::Service,
            "internet" => TargetKind::Internet,
            _ => TargetKind::Workload,
        }
    }
}

/// An internet target's addresses, `(domains, ips)`: an entry is an IP or CIDR when it parses
/// as one (before any `/`), else a domain.
pub fn split_addresses(name: &str) -> (Vec<String>, Vec<String>) {
    let (mut domains, mut ips) = (Vec::new(), Vec::new());
    for a in name.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let addr = a.split_once('/').map_or(a, |(ip, _)| ip);
        if addr.parse::<std::net::IpAddr>().is_ok() {
            ips.push(a.to_string());
        } else {
            domains.push(a.to_string());
        }
    }
    (domains, ips)
}

/// One target row of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    pub name: String,
    pub namespace: String,
    /// Comma-separated ports, e.g. `8080, 8443/TCP`.
    pub ports: String,
}

/// The form: the client workload id (`namespace/name[Kind]`) and its targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub client: String,
    pub targets: Vec<Target>,
    /// The ClientIntents object's name (the client's current one, which the draft replaces);
    /// empty for the client's name.
    pub intents_name: String,
}

/// `auth.platform` (Otterize's way of naming a target in another namespace) as
/// `(name, namespace)`; `None` when `name` has no dot or its parts are not DNS labels.
pub fn split_qualified(name: &str) -> Option<(String, String)> {
    let (n, ns) = name.trim().split_once('.')?;
    let ok = accord_policy::validate::kinds::dns_label;
    (ok(n) && ok(ns)).then(|| (n.to_string(), ns.to_string()))
}

/// A target's name and namespace as written: `auth.platform` read as `auth` in `platform`.
fn name_and_namespace(t: &Target) -> (String, String) {
    if t.kind == TargetKind::Internet {
        return (t.name.trim().to_string(), String::new());
    }
    match split_qualified(&t.name) {
        Some((n, ns)) if t.namespace.trim().is_empty() || t.namespace.trim() == ns => (n, ns),
        _ => (t.name.trim().to_string(), t.namespace.trim().to_string()),
    }
}

/// The form's rows that become targets (those with a name), by index: the ClientIntents's
/// `spec.targets[k]` is row `rows[k]`.
pub fn target_rows(form: &Form) -> Vec<usize> {
    form.targets
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.name.trim().is_empty())
        .map(|(i, _)| i)
        .collect()
}

/// The form field a diagnostic of the draft's ClientIntents concerns (`client`,
/// `targets[i].name`), when it concerns one.
pub fn field_of_diagnostic(form: &Form, field: &str) -> Option<String> {
    if field.starts_with("spec.workload") || field == "metadata.namespace" {
        return Some("client".into());
    }
    let rest = field.strip_prefix("spec.targets[")?;
    let (k, rest) = rest.split_once(']')?;
    let row = *target_rows(form).get(k.parse::<usize>().ok()?)?;
    let part = if rest.contains("ports") {
        "ports"
    } else {
        "name"
    };
    Some(format!("targets[{row}].{part}"))
}

/// A validation error of one field: `client`, or `targets[i].name` / `.ports` / `.namespace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The client workload of the form: `namespace/name[Kind]`, parsed by the core (the one
/// workload-id parser); a bare name has no namespace and is not accepted.
pub fn parse_workload_id(id: &str) -> Option<WorkloadId> {
    WorkloadId::parse(id, "")
}

/// Ports of a target: `(port, protocol)`.
pub fn parse_ports(text: &str) -> Result<Vec<(u16, String)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (num, proto) = match part.split_once('/') {
            Some((n, p)) => (n.trim(), p.trim().to_ascii_uppercase()),
            None => (part, "TCP".to_string()),
        };
        let port: u16 = num
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{part}` is not a port number (1–65535)"))?;
        if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP") {
            return Err(format!("`{proto}` is not TCP, UDP or SCTP"));
        }
        out.push((port, proto));
    }
    Ok(out)
}

/// Field errors of the form; empty when it is valid.
pub fn validate(form: &Form) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut err = |field: String, message: String| errs.push(FieldError { field, message });
    if form.client.trim().is_empty() {
        err("client".into(), "Pick the client workload.".into());
    } else if parse_workload_id(&form.client).is_none() {
        err(
            "client".into(),
            "Use namespace/name, e.g. storefront/cart.".into(),
        );
    }
    if form.targets.iter().all(|t| t.name.trim().is_empty()) {
        err("targets".into(), "Add at least one target.".into());
    }
    for (i, t) in form.targets.iter().enumerate() {
        let (name, namespace) = name_and_namespace(t);
        // A row left blank is the slot to add the next target in: it writes nothing.
        let blank = t.name.trim().is_empty() && t.ports.trim().is_empty();
        if blank {
            continue;
        }
        if t.name.trim().is_empty() {
            err(format!("targets[{i}].name"), "Name the target.".into());
        } else if t.kind == TargetKind::Internet {
            if let Some(bad) = split_addresses(&t.name)
                .0
                .iter()
                .find(|d| !d.split('.').all(accord_policy::validate::kinds::dns_label))
            {
                err(
                    format!("targets[{i}].name"),
                    format!("`{bad}` is neither an IP, a CIDR nor a domain name."),
                );
            }
        } else if t.name.contains('.') && split_qualified(&t.name).is_some() {
            err(
                format!("targets[{i}].name"),
                format!(
                    "`{}` names {name} in namespace {namespace}: keep the name here and put the namespace in the Namespace field.",
                    t.name.trim()
                ),
            );
        } else if !accord_policy::validate::kinds::dns_label(t.name.trim()) {
            err(
                format!("targets[{i}].name"),
                "Lowercase letters, digits and '-' only.".into(),
            );
        }
        if t.kind != TargetKind::Internet
            && !t.namespace.trim().is_empty()
            && !accord_policy::validate::kinds::dns_label(t.namespace.trim())
        {
            err(
                format!("targets[{i}].namespace"),
                "Not a valid namespace name.".into(),
            );
        }
        if let Err(m) = parse_ports(&t.ports) {
            err(format!("targets[{i}].ports"), m);
        }
    }
    errs
}

/// The ClientIntents the form describes, in the core's model.
pub fn to_intents(form: &Form) -> ClientIntents {
    let (namespace, name, kind) = match parse_workload_id(&form.client) {
        Some(id) => (id.namespace, id.name, id.kind),
        None => (String::new(), form.client.trim().to_string(), None),
    };
    let targets = form
        .targets
        .iter()
        .filter(|t| !t.name.trim().is_empty())
        .map(|t| {
            let (tname, tns) = name_and_namespace(t);
            let tns = if tns.is_empty() {
                namespace.clone()
            } else {
                tns
            };
            let ports = parse_ports(&t.ports)
                .unwrap_or_default()
                .into_iter()
                .map(|(port, proto)| TargetPort {
                    port: i32::from(port),
                    end_port: None,
                    protocol: match proto.as_str() {
                        "UDP" => Protocol::Udp,
                        "SCTP" => Protocol::Sctp,
                        _ => Protocol::Tcp,
                    },
                })
                .collect();
            let kind = match t.kind {
                TargetKind::Workload => intents::TargetKind::Workload {
                    name: tname,
                    namespace: tns,
                    kind: None,
                    ports,
                    kafka: false,
                },
                TargetKind::Service => intents::TargetKind::Service {
                    name: tname,
                    namespace: tns,
                    ports,
                },
                TargetKind::Internet => {
                    let (domains, ips) = split_addresses(&tname);
                    intents::TargetKind::Internet {
                        ips,
                        domains,
                        ports: ports.iter().map(|p| p.port).collect(),
                    }
                }
            };
            intents::Target {
                field: String::new(),
                kind,
            }
        })
        .collect();
    ClientIntents {
        name: match form.intents_name.trim() {
            "" => name.clone(),
            n => n.to_string(),
        },
        namespace,
        workload: intents::WorkloadRef { name, kind },
        targets,
        ..ClientIntents::default()
    }
}

/// The ClientIntents (v2beta1) the form describes, written by the core's one ClientIntents
/// writer. Writes what it can even when the form is incomplete, so the preview follows typing.
pub fn to_yaml(form: &Form) -> String {
    accord_policy::render::intents_yaml(&[to_intents(form)])
}

/// The form holding ClientIntents as the server sends them for the form.
pub fn from_draft_intents(d: &accord_api::DraftIntents) -> Form {
    Form {
        client: d.client.clone(),
        targets: d
            .targets
            .iter()
            .map(|t| Target {
                kind: if t.internet {
                    TargetKind::Internet
                } else if t.service {
                    TargetKind::Service
                } else {
                    TargetKind::Workload
                },
                name: t.name.clone(),
                namespace: t.namespace.clone(),
                ports: t.ports.clone(),
            })
            .collect(),
        intents_name: match parse_workload_id(&d.client) {
            Some(id) if id.name == d.name => String::new(),
            _ => d.name.clone(),
        },
    }
}

/// The form as the server and the browser's storage hold it.
pub fn to_draft_intents(form: &Form) -> accord_api::DraftIntents {
    accord_api::DraftIntents {
        client: form.client.clone(),
        name: form.intents_name.clone(),
        targets: form
            .targets
            .iter()
            .map(|t| accord_api::DraftTarget {
                service: t.kind == TargetKind::Service,
                internet: t.kind == TargetKind::Internet,
                name: t.name.clone(),
                namespace: t.namespace.clone(),
                ports: t.ports.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: TargetKind, name: &str, ns: &str, ports: &str) -> Target {
        Target {
            kind,
            name: name.into(),
            namespace: ns.into(),
            ports: ports.into(),
        }
    }

    #[test]
    fn writes_v2beta1_intents_with_cross_namespace_and_port_targets() {
        let form = Form {
            client: "storefront/cart[Deployment]".into(),
            targets: vec![
                target(TargetKind::Workload, "auth", "platform", "8080"),
                target(TargetKind::Service, "catalog", "storefront", ""),
            ],
            ..Form::default()
        };
        assert!(validate(&form).is_empty());
        assert_eq!(
            to_yaml(&form),
            "apiVersion: k8s.otterize.com/v2beta1
kind: ClientIntents
metadata:
  name: cart
  namespace: storefront
spec:
  workload:
    name: cart
    kind: Deployment
  targets:
  - kubernetes:
      name: auth.platform
      ports:
      - port: 8080
        protocol: TCP
  - service:
      name: catalog
"
        );
        // What the form writes, the core reads back as the same intents.
        let mut diags = Vec::new();
        let yaml = to_yaml(&form);
        let docs = accord_policy::load::documents(
            &accord_policy::Source::new("form.yaml", yaml.as_str()),
            &mut diags,
        );
        let parsed = intents::parse(&docs[0].0, &docs[0].1, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(parsed.targets.len(), 2);
        assert_eq!(parsed.targets[0].kind, to_intents(&form).targets[0].kind);
        assert_eq!(parsed.targets[1].kind, to_intents(&form).targets[1].kind);
    }

    #[test]
    fn reports_each_bad_field() {
        let form = Form {
            client: "cart".into(),
            targets: vec![target(TargetKind::Workload, "Auth!", "", "80, 99999")],
            ..Form::default()
        };
        let fields: Vec<String> = validate(&form).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec!["client", "targets[0].name", "targets[0].ports"]
        );
        assert!(
            validate(&Form::default())
                .iter()
                .any(|e| e.field == "targets")
        );
    }

    #[test]
    fn an_internet_target_holds_domains_and_addresses() {
        let form = Form {
            client: "checkout/checkout[Deployment]".into(),
            targets: vec![target(
                TargetKind::Internet,
                "api.fraudcheck.example, 203.0.113.0/24, 2001:db8::1",
                "",
                "443",
            )],
            ..Form::default()
        };
        assert!(validate(&form).is_empty(), "{:?}", validate(&form));
        let yaml = to_yaml(&form);
        let mut diags = Vec::new();
        let docs = accord_policy::load::documents(
            &accord_policy::Source::new("form.yaml", yaml.as_str()),
            &mut diags,
        );
        let parsed = intents::parse(&docs[0].0, &docs[0].1, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}\n{yaml}");
        assert_eq!(
            parsed.targets[0].kind,
            intents::TargetKind::Internet {
                ips: vec!["203.0.113.0/24".into(), "2001:db8::1".into()],
                domains: vec!["api.fraudcheck.example".into()],
                ports: vec![443],
            }
        );
        // The server's form for the same intents comes back as the same row.
        let round = from_draft_intents(&to_draft_intents(&form));
        assert_eq!(round.targets[0].kind, TargetKind::Internet);
        // A name that is no address and no domain is marked on its field.
        let mut bad = form.clone();
        bad.targets[0].name = "api.fraud check".into();
        let errs = validate(&bad);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "targets[0].name");
    }

    #[test]
    fn parses_ports_with_protocols() {
        assert_eq!(
            parse_ports("80, 53/udp").unwrap(),
            vec![(80, "TCP".into()), (53, "UDP".into())]
        );
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("80/ICMP").is_err());
    }

    #[test]
    fn parses_workload_ids() {
        assert_eq!(
            parse_workload_id("platform/ledger-db[StatefulSet]"),
            Some(WorkloadId::new(
                "platform",
                "ledger-db",
                Some("StatefulSet")
            ))
        );
        assert_eq!(
            parse_workload_id("a/b"),
            Some(WorkloadId::new("a", "b", None))
        );
        assert_eq!(parse_workload_id("nope"), None);
    }

    #[test]
    fn empty_rows_are_left_out_and_diagnostics_find_their_row() {
        let form = Form {
            client: "storefront/web[Deployment]".into(),
            targets: vec![
                target(TargetKind::Workload, "catalog", "", ""),
                target(TargetKind::Workload, "", "platform", ""),
                target(TargetKind::Workload, "nosuch", "platform", "8443"),
            ],
            ..Form::default()
        };
        let yaml = to_yaml(&form);
        assert!(
            !yaml.contains(".platform\n") || yaml.contains("nosuch.platform"),
            "{yaml}"
        );
        assert!(
            !yaml.contains("name: .platform"),
            "an empty row previews nothing: {yaml}"
        );
        assert_eq!(to_intents(&form).targets.len(), 2);
        assert_eq!(
            field_of_diagnostic(&form, "spec.targets[1].kubernetes").as_deref(),
            Some("targets[2].name")
        );
        assert_eq!(
            field_of_diagnostic(&form, "spec.workload").as_deref(),
            Some("client")
        );
        assert_eq!(field_of_diagnostic(&form, "spec.targets[9]"), None);
    }

    #[test]
    fn otterize_qualified_names_are_split_with_a_pointer_to_the_namespace_field() {
        assert_eq!(
            split_qualified("auth.platform"),
            Some(("auth".into(), "platform".into()))
        );
        assert_eq!(split_qualified("auth"), None);
        let form = Form {
            client: "storefront/web".into(),
            targets: vec![target(TargetKind::Workload, "auth.platform", "", "")],
            ..Form::default()
        };
        let errs = validate(&form);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("Namespace field"), "{errs:?}");
        // The preview reads it the way Otterize does.
        assert!(
            to_yaml(&form).contains("name: auth.platform"),
            "{}",
            to_yaml(&form)
        );
    }

    #[test]
    fn the_form_round_trips_through_its_stored_shape() {
        let form = Form {
            client: "storefront/web[Deployment]".into(),
            targets: vec![
                target(TargetKind::Workload, "auth", "platform", "8080/TCP"),
                target(TargetKind::Service, "checkout", "checkout", ""),
            ],
            intents_name: "web-intents".into(),
        };
        assert_eq!(from_draft_intents(&to_draft_intents(&form)), form);
    }
}
