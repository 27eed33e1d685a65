//! `accord can-reach`: may one workload (or address) open a connection to another, and why.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::evaluate::{Explanation, SideExplanation};
use accord_policy::objects::Protocol;
use accord_policy::{Evaluator, Inventory, Naming, Peer};
use clap::ValueEnum;

use super::{peers, report};

/// Output formats of answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum AnswerFormat {
    #[default]
    Text,
    Json,
}

/// A port and protocol, written `8080`, `8080/TCP` or `53/udp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortArg {
    pub port: u16,
    pub protocol: Protocol,
}

impl std::str::FromStr for PortArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (port, protocol) = match s.split_once('/') {
            Some((p, proto)) => (
                p,
                Protocol::parse(proto)
                    .ok_or_else(|| format!("unknown protocol {proto:?}: use TCP, UDP or SCTP"))?,
            ),
            None => (s, Protocol::Tcp),
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p >= 1)
            .ok_or_else(|| format!("{port:?} is not a port (1-65535)"))?;
        Ok(PortArg { port, protocol })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The source: a workload `ns/name` or `ns/name[Kind]`, or an IPv4 address.
    #[arg(value_name = "SRC")]
    src: String,

    /// The destination: a workload `ns/name` or `ns/name[Kind]`, or an IPv4 address.
    #[arg(value_name = "DST")]
    dst: String,

    /// Manifest files or directories (searched recursively for *.yaml, *.yml, *.json).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Ask about one port: `8080`, `8080/TCP`, `53/UDP`. Without it, any allowed connection
    /// counts as yes.
    #[arg(long, value_name = "PORT[/PROTO]", env = "ACCORD_PORT")]
    port: Option<PortArg>,

    /// Output format.
    #[arg(
        short,
        long,
        value_enum,
        default_value_t,
        env = "ACCORD_CAN_REACH_OUTPUT"
    )]
    output: AnswerFormat,
    /// Treat warnings (an object the API server would accept but that breaks one of its rules
    /// on parts Accord does not read, a policy with no effect, a target that resolves to
    /// nothing) as errors: any diagnostic makes the exit status 1.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

/// Resolve both names by root identity, or else both by the direct-owner names that
/// `accord connlist` prints, so a name copied from its output works too.
pub fn resolve_pair(
    inv: &Inventory,
    src: &str,
    dst: &str,
) -> Result<(Peer, Peer, Naming), peers::Error> {
    let attempt = |naming| -> Result<(Peer, Peer, Naming), peers::Error> {
        let known = peers::known(inv, naming);
        Ok((
            peers::resolve(src, &known)?,
            peers::resolve(dst, &known)?,
            naming,
        ))
    };
    attempt(Naming::Workload).or_else(|e| attempt(Naming::DirectOwner).map_err(|_| e))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Unreadable objects are reported on standard error; the answer uses what could be read,
    // since the exit status already carries the answer. With --strict, any diagnostic makes
    // the status 1 (not known to be allowed).
    let (inv, failed) = peers::load(&args.paths, args.strict)?;
    let (src, dst, naming) = resolve_pair(&inv, &args.src, &args.dst)?;
    if matches!((&src, &dst), (Peer::External(_), Peer::External(_))) {
        anyhow::bail!("at least one of SRC and DST must be a workload");
    }
    let eval = Evaluator::new(&inv);
    // Diagnostics of the evaluation count against the answer only with --strict.
    let eval_failed = report(eval.diagnostics(), args.strict);
    let failed = args.strict && (eval_failed || failed);
    let explanation = eval
        .explain(&src, &dst, naming)
        .ok_or_else(|| anyhow::anyhow!("{src} or {dst} has no pods"))?;
    let allowed = match args.port {
        Some(p) => explanation.allowed.allows(p.protocol, p.port),
        None => !explanation.allowed.is_empty(),
    };
    match args.output {
        AnswerFormat::Text => print!("{}", text(&explanation, args.port, allowed)),
        AnswerFormat::Json => {
            let v = serde_json::json!({
                "allowed": allowed,
                "port": args.port.map(|p| format!("{}/{}", p.port, p.protocol)),
                "explanation": explanation,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(if allowed && !failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn side(out: &mut String, what: &str, peer: &Peer, s: &SideExplanation, port: Option<PortArg>) {
    if let Peer::External(_) = peer {
        let _ = writeln!(
            out,
            "  {what} of {peer}: outside the cluster, no policy applies"
        );
        return;
    }
    let concerns =
        |c: &accord_policy::evaluate::Conns| port.is_none_or(|p| c.allows(p.protocol, p.port));
    // Admin policies come first: their rules decide ports before NetworkPolicies are consulted.
    for d in s.admin.iter().filter(|d| concerns(&d.conns)) {
        let _ = writeln!(out, "  {what} of {peer}: decided by {d}");
    }
    // An admin Allow or Deny of the asked port is final; NetworkPolicies are not consulted.
    let settled = port.is_some()
        && s.admin
            .iter()
            .any(|d| concerns(&d.conns) && d.action != accord_policy::objects::AdminAction::Pass);
    if settled {
        return;
    }
    if !s.isolated() {
        let rest = if s.admin.is_empty() {
            ", all connections allowed"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {what} of {peer}: not isolated (no NetworkPolicy selects it for {what}){rest}"
        );
        return;
    }
    let names: Vec<String> = s.isolated_by.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "  {what} of {peer}: isolated by {}", names.join(", "));
    let relevant: Vec<_> = s
        .admitted_by
        .iter()
        .filter(|a| concerns(&a.conns))
        .collect();
    if relevant.is_empty() {
        let what = if port.is_some() {
            "this port"
        } else {
            "this peer"
        };
        let _ = writeln!(out, "    no rule admits {what}");
    }
    for a in relevant {
        let _ = writeln!(out, "    admitted by {}: {}", a.rule, a.conns);
    }
}

fn text(e: &Explanation, port: Option<PortArg>, allowed: bool) -> String {
    let mut out = String::new();
    let what = match port {
        Some(p) => format!("on {}/{}", p.port, p.protocol),
        None if allowed => format!("with {}", e.allowed),
        None => "at all".to_string(),
    };
    let verdict = if allowed { "yes" } else { "no" };
    let can = if allowed { "can" } else { "cannot" };
    let _ = writeln!(out, "{verdict}: {} {can} reach {} {what}", e.src, e.dst);
    side(&mut out, "egress", &e.src, &e.egress, port);
    side(&mut out, "ingress", &e.dst, &e.ingress, port);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports_with_and_without_protocol() {
        assert_eq!(
            "8080".parse::<PortArg>().unwrap(),
            PortArg {
                port: 8080,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(
            "53/udp".parse::<PortArg>().unwrap(),
            PortArg {
                port: 53,
                protocol: Protocol::Udp
            }
        );
        assert!("0/TCP".parse::<PortArg>().is_err());
        assert!("80/HTTP".parse::<PortArg>().is_err());
        assert!("http".parse::<PortArg>().is_err());
    }
}
