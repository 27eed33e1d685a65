//! `accord render` on the bundled demo, as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/demo")
}

fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run accord")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn renders_the_demo_policies() {
    let out = accord(&["render", demo().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("demo_policies", stdout(&out));
}

#[test]
fn renders_the_demo_label_changes() {
    let out = accord(&["render", "--labels", demo().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The demo is a snapshot in which cart's pods lost their access label to auth.
    insta::assert_snapshot!("demo_labels", stdout(&out));
}

#[test]
fn renders_the_demo_with_separate_egress_policies() {
    let out = accord(&[
        "render",
        "--egress",
        "--separate-policies",
        demo().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("demo_egress", stdout(&out));
    // The shipping domain is not resolved offline; that is a warning, not a failure.
    assert!(
        stderr(&out).contains("api.carrier.example.com"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn shadow_mode_renders_only_enforced_namespaces_and_protected_services() {
    let out = accord(&[
        "render",
        "--shadow",
        "--enforced-namespace",
        "checkout",
        "-o",
        "json",
        demo().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap(),
                p["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "checkout/checkout-service-access",
            "checkout/orders-access",
            "checkout/payments-access",
            "checkout/shipping-access",
            "platform/auth-access",
            "platform/default-deny-auth",
            "platform/default-deny-ledger-db",
            "platform/ledger-db-statefulset-access",
        ]
    );
}

#[test]
fn invalid_input_exits_1_and_names_file_object_and_field() {
    let dir = tempdir();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec:\n  workload: {name: a}\n  targets:\n    - {kubernetes: {name: s}, service: {name: s}}\n    - kubernetes: {name: ok}\n",
    )
    .unwrap();
    let out = accord(&["render", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error[invalid-value]: ")
            && err.contains("bad.yaml (document 1): ClientIntents x/a: spec.targets[0]: a target must set exactly one key"),
        "{err}"
    );
    // The valid target is still rendered.
    assert!(stdout(&out).contains("name: ok-access"), "{}", stdout(&out));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn strict_makes_warnings_fail() {
    let dir = tempdir();
    let f = dir.join("i.yaml");
    std::fs::write(&f, "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec:\n  workload: {name: a}\n  targets: [{kubernetes: {name: ghost}}]\n").unwrap();
    assert_eq!(
        accord(&["render", f.to_str().unwrap()]).status.code(),
        Some(0)
    );
    assert_eq!(
        accord(&["render", "--strict", f.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(accord(&["render"]).status.code(), Some(2));
    assert_eq!(
        accord(&["render", "-o", "toml", "x"]).status.code(),
        Some(2)
    );
    let missing = accord(&["render", "/no/such/path"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/no/such/path: no such file or directory"));
    assert_eq!(
        accord(&["render", "--enforced-namespace", "a", "x"])
            .status
            .code(),
        Some(2),
        "--enforced-namespace requires --shadow"
    );
}

#[test]
fn help_explains_every_flag() {
    let out = accord(&["render", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for flag in [
        "--labels",
        "--output",
        "--egress",
        "--separate-policies",
        "--shadow",
        "--enforced-namespace",
        "--strict",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "accord-render-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn an_unreadable_file_is_a_diagnostic_and_the_others_are_rendered() {
    let dir = tempdir();
    std::fs::write(dir.join("binary.yaml"), b"kind: \xff\xfe\x00").unwrap();
    std::fs::write(
        dir.join("i.yaml"),
        "\u{feff}apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec:\n  workload: {name: a}\n  targets: [{kubernetes: {name: ok}}]\n",
    )
    .unwrap();
    let status = Command::new("mkfifo")
        .arg(dir.join("fifo.yaml"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = accord(&["render", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("name: ok-access"), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("binary.yaml").count(), 1, "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    assert!(err.contains("fifo.yaml: not a regular file"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
