//! Observed traffic from recorded Hubble flows (`hubble observe -o jsonpb`), as a user runs
//! `accord suggest`: flows → observations → suggested ClientIntents, against the demo shop.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run accord")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn demo_flows_become_observations_with_replies_probes_and_dns_apart() {
    let out = accord(&[
        "suggest",
        "--flows",
        "assets/flows/demo.jsonl",
        "--observations",
        "assets/demo",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    // The catalog's answers to web are replies, never a call from catalog.
    assert!(!table.contains("storefront/catalog[Deployment]       storefront/web"));
    insta::assert_snapshot!("demo_observations", table);
}

#[test]
fn demo_flows_suggest_intents_merged_with_the_current_ones() {
    let out = accord(&[
        "suggest",
        "--flows",
        "assets/flows/demo.jsonl",
        "assets/demo",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    // Declared calls (web's, through the checkout Service too) suggest nothing; the dropped
    // cart → auth call is declared (an incident, not a missing intent).
    assert!(!yaml.contains("Suggested for storefront/web"), "{yaml}");
    assert!(!yaml.contains("Suggested for storefront/cart"), "{yaml}");
    insta::assert_snapshot!("demo_suggestions", yaml);
}

#[test]
fn suggestions_as_a_reviewable_diff_from_the_current_intents() {
    let out = accord(&[
        "suggest",
        "--diff",
        "--flows",
        "assets/flows/demo.jsonl",
        "assets/demo",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("demo_suggestions_diff", text(&out.stdout));
}

#[test]
fn suggestions_read_back_as_valid_intents_that_declare_every_observed_call() {
    let dir = tempfile::tempdir().unwrap();
    let out = accord(&[
        "suggest",
        "--flows",
        "assets/flows/demo.jsonl",
        "assets/demo",
    ]);
    assert_eq!(out.status.code(), Some(0));
    // The demo with the suggestions in place of the intents they merge with.
    let copy = dir.path().join("demo");
    copy_dir(&root().join("assets/demo"), &copy);
    std::fs::remove_file(copy.join("checkout/intents/checkout.yaml")).unwrap();
    std::fs::write(copy.join("checkout/intents/suggested.yaml"), &out.stdout).unwrap();
    let again = accord(&[
        "suggest",
        "--strict",
        "--flows",
        "assets/flows/demo.jsonl",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "", "nothing left to suggest");
    assert!(text(&again.stderr).contains("nothing to suggest"));
}

#[test]
fn flows_are_read_from_standard_input_and_directories() {
    let flows = std::fs::read(root().join("assets/flows/demo.jsonl")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["suggest", "--flows", "-", "assets/demo"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&flows).unwrap();
    let piped = child.wait_with_output().unwrap();
    let from_dir = accord(&["suggest", "--flows", "assets/flows", "assets/demo"]);
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stdout), text(&from_dir.stdout));
    assert!(text(&piped.stdout).contains("api.fraudcheck.example"));
}

#[test]
fn a_malformed_flow_line_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"flow\":{}}\n{not json\n").unwrap();
    let out = accord(&["suggest", "--flows", bad.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_with_recorded_flows_claims_unused_declarations_only_under_full_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_accord"))
            .args([
                "serve",
                "--manifests",
                "assets/demo",
                "--flows",
                "assets/flows/demo.jsonl",
            ])
            .arg("--db")
            .arg(dir.path().join("accord.db"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let path = "/api/observed?server=storefront/catalog%5BDeployment%5D";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body: serde_json::Value = loop {
        if let Some((head, body)) = http_get(port, path)
            && head.starts_with("HTTP/1.1 200")
        {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            // Ready once the pass has run (assessed calls) and the recording is stored.
            if v["calls"].as_array().is_some_and(|c| !c.is_empty())
                && v["calls"][0]["state"].is_string()
            {
                break v;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no observations");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let calls = body["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["client"], "storefront/web[Deployment]");
    assert_eq!(calls[0]["state"], "declared");
    assert_eq!(
        calls[0]["count"], 3,
        "three connections, each reported at both ends"
    );
    // The recording reported no lost events: its window is complete, so the catalog's declared
    // callers that were not observed are claimed unused, with the window shown.
    assert_eq!(body["unused_claimed"], true, "{body}");
    assert_eq!(body["window"]["from"], "2026-11-30T05:00:01.919Z");
    assert_eq!(body["window"]["lost_events"], 0);
    let unused: Vec<&str> = body["unused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["client"].as_str().unwrap())
        .collect();
    assert!(
        unused.contains(&"storefront/search[Deployment]"),
        "{unused:?}"
    );
    assert!(
        !unused.contains(&"storefront/web[Deployment]"),
        "{unused:?}"
    );
    assert!(body["suggestions"].as_array().unwrap().is_empty());

    // The observed dimension of the graph's edges, worst state per edge.
    let (head, edges) = http_get(port, "/api/observed/edges").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let edges: serde_json::Value = serde_json::from_str(&edges).unwrap();
    let edge = |s: &str, t: &str| {
        edges["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"] == s && e["target"] == t)
            .cloned()
            .unwrap_or_default()
    };
    let pay = edge(
        "checkout/checkout[Deployment]",
        "checkout/payments[Deployment]",
    );
    assert_eq!(pay["state"], "undeclared", "9090 is not declared: {pay}");
    assert_eq!(pay["ports"], "TCP 8443,9090");
    assert_eq!(pay["count"], 2);
    let auth = edge("storefront/cart[Deployment]", "platform/auth[Deployment]");
    assert_eq!(auth["state"], "dropped");
    assert_eq!(auth["dropped"], 2);
    assert_eq!(
        edge(
            "storefront/web[Deployment]",
            "storefront/catalog[Deployment]"
        )["state"],
        "declared"
    );
    // External peers are not graph edges.
    assert!(
        edges["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["target"].as_str().unwrap().starts_with("external:"))
    );
}

fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

#[test]
fn drift_report_gains_observed_undeclared_dropped_and_unused_items() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_accord"))
            .args([
                "serve",
                "--manifests",
                "assets/demo",
                "--flows",
                "assets/flows/demo.jsonl",
            ])
            .arg("--db")
            .arg(dir.path().join("accord.db"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let path = "/api/drift?kind=observed-undeclared,observed-dropped,declared-unused&per_page=500";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report: serde_json::Value = loop {
        if let Some((head, body)) = http_get(port, path)
            && head.starts_with("HTTP/1.1 200")
        {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            // Ready once the pass has run and the recording is stored.
            if v["items"].as_array().is_some_and(|i| i.len() >= 3) {
                break v;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no observed items");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let items = report["items"].as_array().unwrap();
    let find = |key: &str| {
        items
            .iter()
            .find(|i| i["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {items:#?}"))
            .clone()
    };
    // Observed and dropped now: an incident, high.
    let dropped = find("observed-dropped/storefront/cart[Deployment]>platform/auth[Deployment]");
    assert_eq!(dropped["severity"], "high");
    assert_eq!(dropped["rule"], "observed-dropped");
    assert!(dropped["first_seen"].is_string(), "{dropped}");
    // The dropped incident ranks above the rest.
    assert_eq!(items[0]["kind"], "observed-dropped", "{items:#?}");

    // Observed but undeclared (9090 is not declared; Accord's evaluation of the generated
    // policies denies it once payments is protected): one item per client, its fix the merged
    // intents.
    let undeclared = find("observed-undeclared/checkout/checkout[Deployment]");
    assert_eq!(undeclared["severity"], "medium");
    assert_eq!(undeclared["fix"]["kind"], "intents");
    assert!(
        undeclared["explanation"]
            .as_str()
            .unwrap()
            .contains("checkout/payments[Deployment] 9090/TCP"),
        "{undeclared}"
    );
    let (head, body) = http_get(
        port,
        "/api/drift/item?key=observed-undeclared/checkout/checkout%5BDeployment%5D",
    )
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}{body}");
    let item: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(item["fix"]["verdict"]["safe"], true, "{item:#}");
    assert_eq!(item["fix"]["verdict"]["resolved"], true, "{item:#}");
    let draft = item["fix"]["draft"].as_str().unwrap();
    // Merged, never replacing: the declared 8443 stays, 9090 is added.
    assert!(draft.contains("8443"), "{draft}");
    assert!(draft.contains("9090"), "{draft}");
    // The draft form holds internet targets too: the merged intents open as a draft, the
    // declared internet address kept and the fraud-check API added as internet rows.
    let forms = item["fix"]["forms"]
        .as_array()
        .unwrap_or_else(|| panic!("{item:#}"));
    assert_eq!(forms.len(), 1, "{item:#}");
    let internet: Vec<&serde_json::Value> = forms[0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["internet"] == true)
        .collect();
    let names: Vec<&str> = internet
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["203.0.113.10", "api.fraudcheck.example"],
        "{item:#}"
    );
    assert!(internet.iter().all(|t| t["ports"] == "443"), "{item:#}");
    // A client whose merged intents the form holds whole: openable as a draft.
    let (head, body) = http_get(
        port,
        "/api/drift/item?key=observed-undeclared/platform/ledger-backup%5BCronJob%5D",
    )
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}{body}");
    let item: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(item["fix"]["verdict"]["safe"], true, "{item:#}");
    let forms = item["fix"]["forms"]
        .as_array()
        .unwrap_or_else(|| panic!("{item:#}"));
    assert_eq!(forms.len(), 1, "openable as a draft: {item:#}");
    assert_eq!(forms[0]["client"], "platform/ledger-backup[CronJob]");
    // A call declared through a Service target is not an undeclared item.
    assert!(
        items
            .iter()
            .all(|i| i["key"] != "observed-undeclared/storefront/web[Deployment]"),
        "{items:#?}"
    );

    // Declared but unused: the recording's window is complete, and the item states it.
    let unused =
        find("declared-unused/storefront/search[Deployment]>storefront/catalog[Deployment]");
    assert_eq!(unused["severity"], "low");
    let text = unused["explanation"].as_str().unwrap();
    assert!(text.contains("2026-11-30T05:00:01.919Z"), "{text}");
    assert!(text.contains("full coverage"), "{text}");
    // An observed call is never claimed unused.
    assert!(
        items.iter().all(|i| i["key"]
            != "declared-unused/storefront/web[Deployment]>storefront/catalog[Deployment]"),
        "{items:#?}"
    );

    // Acknowledged like any item, and left out of the next listing.
    let (head, body) = http(
        port,
        "POST",
        "/api/drift/ack",
        &serde_json::json!({"key": unused["key"], "reason": "nightly batch job"}).to_string(),
    )
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}{body}");
    let (_, body) = http_get(port, path).unwrap();
    let after: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        after["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["key"] != unused["key"]),
        "{after:#}"
    );
    assert_eq!(after["summary"]["acknowledged"], 1, "{after:#}");
}
