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

/// A Deployment whose selector misses its template's labels: the API server refuses it, but
/// Accord reads it by its template, so without `--strict` this is a warning.
fn mismatched_deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: x}}\nspec:\n  selector: {{matchLabels: {{app: other}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c}}]}}\n"
    )
}

#[test]
fn strict_makes_warnings_fail_in_every_command_that_reads_manifests() {
    let dir = tempdir();
    std::fs::write(dir.join("a.yaml"), mismatched_deployment("a")).unwrap();
    std::fs::write(dir.join("b.yaml"), mismatched_deployment("b")).unwrap();
    let d = dir.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["render", d],
        &["connlist", d],
        &["can-reach", "x/a", "x/b", d],
        &["who-can-reach", "x/b", d],
        &["diff", d, d],
    ];
    for args in commands {
        let out = accord(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("warning[invalid-value]"),
            "{args:?}: {}",
            stderr(&out)
        );
        let mut strict = args.to_vec();
        strict.insert(1, "--strict");
        let out = accord(&strict);
        assert_eq!(out.status.code(), Some(1), "{strict:?}: {}", stderr(&out));
        // The answer is still printed (render and diff have nothing to print here).
        if !matches!(args[0], "render" | "diff") {
            assert!(!stdout(&out).is_empty(), "{strict:?}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn duplicates_are_errors_naming_both_files_and_the_rejected_intents_render_nothing() {
    let dir = tempdir();
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: x}\nspec:\n  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: web}}}\n";
    let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}}\n";
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n";
    let intents = |name: &str, target: &str| {
        format!(
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {{name: {name}, namespace: x}}\nspec:\n  workload: {{name: web}}\n  targets: [{{kubernetes: {{name: {target}}}}}]\n"
        )
    };
    std::fs::write(
        dir.join("one.yaml"),
        format!(
            "{deploy}---\n{np}---\n{svc}---\n{}",
            intents("first", "api")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("two.yaml"),
        format!(
            "{deploy}---\n{np}---\n{svc}---\n{}",
            intents("second", "db")
        ),
    )
    .unwrap();
    let out = accord(&["render", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for object in ["Deployment x/web", "NetworkPolicy x/p", "Service x/s"] {
        let line = err
            .lines()
            .find(|l| l.starts_with("error[duplicate-object]") && l.contains(object))
            .unwrap_or_else(|| panic!("no duplicate error for {object}: {err}"));
        assert!(
            line.contains("two.yaml (document")
                && line.contains("also in ")
                && line.contains("one.yaml (document"),
            "{line}"
        );
    }
    let line = err
        .lines()
        .find(|l| l.starts_with("error[duplicate-intents]"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("two.yaml")
            && line.contains("ClientIntents x/second")
            && line.contains("one.yaml"),
        "{line}"
    );
    // The first intents render their policy; the rejected second ones render nothing.
    let policies = stdout(&out);
    assert!(policies.contains("name: api-access"), "{policies}");
    assert!(!policies.contains("db-access"), "{policies}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_missing_client_is_reported_once() {
    let dir = tempdir();
    // The client `ghost` is named by its ClientIntents and by the server's called-by annotation.
    std::fs::write(
        dir.join("m.yaml"),
        "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: i, namespace: x}\nspec:\n  workload: {name: ghost}\n  targets: [{kubernetes: {name: api}}]\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: api\n  namespace: x\n  annotations: {intents.otterize.com/called-by: ghost}\n",
    )
    .unwrap();
    let out = accord(&["render", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("client-not-found").count(), 1, "{err}");
    assert!(err.contains("ClientIntents x/i"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
