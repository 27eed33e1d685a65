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
    if form.targets.is_empty() {
        err("targets".into(), "Add at least one target.".into());
    }
    for (i, t) in form.targets.iter().enumerate() {
        if t.name.trim().is_empty() {
            err(format!("targets[{i}].name"), "Name the target.".into());
        } else if !accord_policy::validate::kinds::dns_label(t.name.trim()) {
            err(
                format!("targets[{i}].name"),
                "Lowercase letters, digits and '-' only.".into(),
            );
        }
        if !t.namespace.trim().is_empty()
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
        .map(|t| {
            let tname = t.name.trim().to_string();
            let tns = match t.namespace.trim() {
                "" => namespace.clone(),
                ns => ns.to_string(),
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
            };
            intents::Target {
                field: String::new(),
                kind,
            }
        })
        .collect();
    ClientIntents {
        name: name.clone(),
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
}
