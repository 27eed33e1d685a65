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
