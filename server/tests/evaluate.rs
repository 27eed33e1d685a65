//! `accord connlist`, `can-reach`, `who-can-reach` and `diff` on the bundled demo, as a user
//! runs them.

use std::path::{Path, PathBuf};
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

fn demo_arg() -> String {
    demo().to_str().unwrap().to_string()
}

#[test]
fn lists_the_demo_connectivity() {
    let out = accord(&["connlist", &demo_arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    // ledger-db is protected: nothing from the storefront reaches it, the backup job only on 5432.
    let into_db: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("=> platform/ledger-db"))
        .collect();
    assert!(
        into_db.iter().all(|l| !l.starts_with("storefront/")),
        "{into_db:?}"
    );
    assert!(into_db.contains(
        &"platform/ledger-backup[CronJob] => platform/ledger-db[StatefulSet] : TCP 5432"
    ));
    insta::assert_snapshot!("demo_connlist", text);
}

#[test]
fn lists_one_workload_as_markdown() {
    let out = accord(&[
        "connlist",
        "-o",
        "md",
        "--focus-workload",
        "checkout/payments",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .skip(2)
            .all(|l| l.contains("checkout/payments[Deployment]")),
        "{text}"
    );
    insta::assert_snapshot!("demo_connlist_payments_md", text);
}

#[test]
fn connlist_formats_agree_on_the_pairs() {
    let txt = stdout(&accord(&["connlist", &demo_arg()]));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&accord(&["connlist", "-o", "json", &demo_arg()]))).unwrap();
    let csv = stdout(&accord(&["connlist", "-o", "csv", &demo_arg()]));
    let dot = stdout(&accord(&["connlist", "-o", "dot", &demo_arg()]));
    let n = txt.lines().count();
    assert_eq!(json.as_array().unwrap().len(), n);
    assert_eq!(csv.lines().count(), n + 1);
    assert_eq!(dot.lines().filter(|l| l.contains(" -> ")).count(), n);
    let first = &json[0];
    assert_eq!(
        txt.lines().next().unwrap(),
        format!(
            "{} => {} : {}",
            first["src"].as_str().unwrap(),
            first["dst"].as_str().unwrap(),
            first["conn"].as_str().unwrap()
        )
    );
}

#[test]
fn can_reach_answers_yes_with_the_admitting_rule() {
    let out = accord(&[
        "can-reach",
        "checkout/checkout",
        "checkout/payments",
        "--port",
        "8443/TCP",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("demo_can_reach_yes", stdout(&out));
}

#[test]
fn can_reach_answers_no_with_the_isolating_policies() {
    let out = accord(&[
        "can-reach",
        "storefront/web",
        "platform/ledger-db",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    insta::assert_snapshot!("demo_can_reach_no", stdout(&out));
}

#[test]
fn can_reach_denies_a_port_the_rules_do_not_admit() {
    let out = accord(&[
        "can-reach",
        "platform/ledger-backup",
        "platform/ledger-db",
        "--port",
        "22",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = accord(&[
        "can-reach",
        "platform/ledger-backup",
        "platform/ledger-db",
        "--port",
        "5432",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn can_reach_json_carries_the_explanation() {
    let out = accord(&[
        "can-reach",
        "-o",
        "json",
        "platform/ledger-backup",
        "platform/ledger-db",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["explanation"]["allowed"], "TCP 5432");
    assert!(
        !v["explanation"]["ingress"]["isolated_by"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unknown_workloads_are_a_usage_error_with_suggestions() {
    let out = accord(&[
        "can-reach",
        "storefront/wbe",
        "checkout/payments",
        &demo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean storefront/web[Deployment]"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    let out = accord(&["who-can-reach", "checkout/paymnts", &demo_arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("checkout/payments[Deployment]"),
        "{}",
        stderr(&out)
    );
    let out = accord(&["can-reach", "web", "checkout/payments", &demo_arg()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn who_can_reach_lists_sources_and_ports() {
    let out = accord(&["who-can-reach", "checkout/payments", &demo_arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("demo_who_can_reach_payments", stdout(&out));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The demo after a pull request that drops platform's policies and restricts the storefront
/// web tier's egress to DNS, its own namespace and the card processor's addresses.
fn changed_demo() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("evaluate-changed-demo");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&demo(), &dir);
    std::fs::remove_file(dir.join("platform/policies.yaml")).unwrap();
    std::fs::write(
        dir.join("storefront/web-egress.yaml"),
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: storefront}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
    - ports: [{port: 53, protocol: UDP}]
    - to: [{podSelector: {}}]
    - to: [{ipBlock: {cidr: 203.0.113.0/24}}]
      ports: [{port: 443}]
"#,
    )
    .unwrap();
    dir
}

#[test]
fn diff_of_identical_manifests_is_empty() {
    let out = accord(&["diff", "--exit-code", &demo_arg(), &demo_arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "no connectivity changes\n");
}

#[test]
fn diff_reports_added_removed_and_changed_connections() {
    let new = changed_demo();
    let out = accord(&["diff", "--exit-code", &demo_arg(), new.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    // Without platform's policies ledger-db opens up.
    assert!(
        text.contains(
            "+ checkout/checkout[Deployment] => platform/ledger-db[StatefulSet] : All Connections"
        ),
        "{text}"
    );
    // web's new egress policy lets only its DNS rule (which has no `to`) out of its namespace.
    assert!(
        text.contains("+ storefront/web[Deployment] => platform/ledger-db[StatefulSet] : UDP 53"),
        "{text}"
    );
    // The declared call web → checkout is blocked by web's new egress policy: said in words of
    // the drift model, through the same comparison the dashboard's history uses.
    assert!(
        text.contains("! storefront/web[Deployment] => checkout/checkout[Deployment] : enforced -> blocked (revoked)"),
        "{text}"
    );
    insta::assert_snapshot!("demo_diff_text", text);
    let out = accord(&["diff", "-o", "md", &demo_arg(), new.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("demo_diff_md", stdout(&out));
}

#[test]
fn unreadable_input_is_reported_and_fails_the_list() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("evaluate-bad-input");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: a}\nspec: {podSelector: 5}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: a}\n",
    )
    .unwrap();
    let out = accord(&["connlist", dir.to_str().unwrap()]);
    // The policy that could not be read might have denied something: say so in the status.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("NetworkPolicy a/broken: spec.podSelector"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("a/p[Pod] => a/q[Pod] : All Connections"),
        "{}",
        stdout(&out)
    );
}
