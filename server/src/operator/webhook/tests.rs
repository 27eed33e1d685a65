use super::ca::{client_config_patch, merged_bundle, pem_blocks};
use super::review::{review_admission, review_conversion};
use super::*;
use std::sync::Arc;

use k8s_openapi::ByteString;
use kube::Client;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::k8s::CONVERT_PATH;

fn review(desired: &str, objects: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "705ab4f5", "desiredAPIVersion": desired, "objects": objects},
    })
}

#[test]
fn conversion_review_answers_with_the_uid_and_converted_objects() {
    let r = review_conversion(&review(
        "k8s.otterize.com/v2beta1",
        json!([{
            "apiVersion": "k8s.otterize.com/v1alpha2", "kind": "ClientIntents",
            "metadata": {"name": "client-intents", "namespace": "ns"},
            "spec": {"service": {"name": "client"}, "calls": [{"name": "server"}]},
        }]),
    ));
    assert_eq!(r["kind"], "ConversionReview");
    assert_eq!(r["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(r["response"]["uid"], "705ab4f5");
    assert_eq!(r["response"]["result"]["status"], "Success");
    assert_eq!(
        r["response"]["convertedObjects"][0]["spec"],
        json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server"}}]})
    );
    assert_eq!(
        r["response"]["convertedObjects"][0]["apiVersion"],
        "k8s.otterize.com/v2beta1"
    );
}

#[test]
fn conversion_review_fails_for_an_unknown_version_naming_the_object() {
    let r = review_conversion(&review(
        "k8s.otterize.com/v9",
        json!([{"apiVersion": "k8s.otterize.com/v2beta1", "metadata": {"name": "x"}, "spec": {}}]),
    ));
    assert_eq!(r["response"]["uid"], "705ab4f5");
    assert_eq!(r["response"]["result"]["status"], "Failure");
    let message = r["response"]["result"]["message"].as_str().unwrap();
    assert!(message.contains("ClientIntents x"), "{message}");
    assert_eq!(r["response"]["convertedObjects"], json!([]));
}

fn admission(operation: &str, object: Value, old: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u", "operation": operation, "namespace": "ns", "object": object, "oldObject": old},
    })
}

fn intents(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents", "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
}

#[test]
fn admission_denies_a_target_with_two_keys_naming_the_field() {
    let bad = intents(
        "c",
        json!({"workload": {"name": "c"}, "targets": [{"kubernetes": {"name": "a"}, "service": {"name": "b"}}]}),
    );
    let r = review_admission(&admission("CREATE", bad, Value::Null), &[]);
    assert_eq!(r["kind"], "AdmissionReview");
    assert_eq!(r["response"]["uid"], "u");
    assert_eq!(r["response"]["allowed"], false);
    let message = r["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("spec.targets[0]:"), "{message}");
}

#[test]
fn admission_denies_each_upstream_rejection_by_field() {
    for (spec, field) in [
        (json!({"workload": {"name": "a.b"}}), "spec.workload.name"),
        (
            json!({"workload": {"name": "c"}, "targets": [{"kubernetes": {"name": "s", "http": [{"methods": ["GET"]}]}}]}),
            "spec.targets[0].kubernetes.http[0].path",
        ),
        (
            json!({"workload": {"name": "c"}, "targets": [{"internet": {"ports": [443]}}]}),
            "spec.targets[0].internet",
        ),
    ] {
        let r = review_admission(&admission("CREATE", intents("c", spec), Value::Null), &[]);
        assert_eq!(r["response"]["allowed"], false, "{field}");
        let message = r["response"]["status"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{message}");
    }
}

#[test]
fn admission_denies_a_second_intents_for_the_same_workload() {
    let spec = json!({"workload": {"name": "c"}, "targets": [{"kubernetes": {"name": "s"}}]});
    let existing = intents("first", spec.clone());
    let r = review_admission(
        &admission("CREATE", intents("second", spec.clone()), Value::Null),
        std::slice::from_ref(&existing),
    );
    assert_eq!(r["response"]["allowed"], false);
    let message = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.workload.name:") && message.contains("first"),
        "{message}"
    );
    // The object itself, updated, is no duplicate; another kind is another workload.
    let r = review_admission(
        &admission("UPDATE", existing.clone(), Value::Null),
        std::slice::from_ref(&existing),
    );
    assert_eq!(r["response"]["allowed"], true);
    let other_kind = intents(
        "third",
        json!({"workload": {"name": "c", "kind": "StatefulSet"}}),
    );
    let r = review_admission(&admission("CREATE", other_kind, Value::Null), &[existing]);
    assert_eq!(r["response"]["allowed"], true);
}

#[test]
fn admission_allows_valid_intents_deletions_and_spec_preserving_updates() {
    let good = intents(
        "c",
        json!({"workload": {"name": "c"}, "targets": [{"service": {"name": "s"}}]}),
    );
    assert_eq!(
        review_admission(&admission("CREATE", good, Value::Null), &[])["response"]["allowed"],
        true
    );
    let bad = intents("c", json!({"workload": {"name": "a.b"}}));
    assert_eq!(
        review_admission(&admission("DELETE", Value::Null, bad.clone()), &[])["response"]["allowed"],
        true
    );
    let mut with_finalizer = bad.clone();
    with_finalizer["metadata"]["finalizers"] = json!(["x"]);
    assert_eq!(
        review_admission(&admission("UPDATE", with_finalizer, bad.clone()), &[])["response"]["allowed"],
        true
    );
}

#[test]
fn admission_reads_v1_objects_and_names_their_fields() {
    let v1 = json!({"apiVersion": "k8s.otterize.com/v1alpha2", "kind": "ClientIntents",
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {"service": {"name": "c"}, "calls": [{"name": "s", "type": "carrier-pigeon"}]}});
    let r = review_admission(&admission("CREATE", v1, Value::Null), &[]);
    assert_eq!(r["response"]["allowed"], false);
    let message = r["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("spec.calls[0].type:"), "{message}");
    // HTTP resources need a path in v1 too, under each version's own field name.
    for (version, key) in [("v1alpha2", "resources"), ("v1beta1", "HTTPResources")] {
        let v1 = json!({"apiVersion": format!("k8s.otterize.com/{version}"), "kind": "ClientIntents",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"service": {"name": "c"}, "calls": [{"name": "s", key: [{"methods": ["GET"]}]}]}});
        let r = review_admission(&admission("CREATE", v1, Value::Null), &[]);
        let message = r["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.starts_with(&format!("spec.calls[0].{key}[0].path:")),
            "{version}: {message}"
        );
    }
}

#[test]
fn bundles_keep_our_ca_first_and_a_few_others() {
    let ca = |n: u8| format!("-----BEGIN CERTIFICATE-----\nQ{n}\n-----END CERTIFICATE-----\n");
    let current: String = (1..=6).map(ca).collect();
    let merged = String::from_utf8(merged_bundle(current.as_bytes(), &ca(9))).unwrap();
    assert_eq!(pem_blocks(&merged), vec![ca(9), ca(1), ca(2), ca(3)]);
    // Already present: no patch; absent: a patch with the merged bundle.
    let have = json!({"caBundle": serde_json::to_value(ByteString(merged.into_bytes())).unwrap()});
    assert_eq!(client_config_patch(Some(&have), Some(&ca(9)), None), None);
    let patch = client_config_patch(
        Some(&have),
        Some(&ca(7)),
        Some("https://127.0.0.1:9443/convert"),
    )
    .expect("a patch");
    assert_eq!(patch["url"], "https://127.0.0.1:9443/convert");
    assert_eq!(patch["service"], Value::Null);
    let bundle: ByteString = serde_json::from_value(patch["caBundle"].clone()).unwrap();
    assert_eq!(pem_blocks(&String::from_utf8(bundle.0).unwrap())[0], ca(7));
}

#[test]
fn renewed_certificate_files_are_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let write = |name: &str| {
        let k = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        std::fs::write(&cert, c.pem()).unwrap();
        std::fs::write(&key, k.serialize_pem()).unwrap();
    };
    write("first.example");
    let tls = Tls::prepare(&TlsSource::Files {
        cert: cert.clone(),
        key: key.clone(),
    })
    .expect("loads the files");
    assert!(tls.generated_ca.is_none());
    let before = tls.certificate.current();
    assert!(
        !tls.certificate.reload(&cert, &key).unwrap(),
        "unchanged files"
    );
    write("second.example");
    assert!(tls.certificate.reload(&cert, &key).unwrap());
    assert_ne!(tls.certificate.current().cert, before.cert);
    // A broken file keeps the last good certificate.
    std::fs::write(&key, "not a key").unwrap();
    assert!(matches!(
        tls.certificate.reload(&cert, &key),
        Err(Error::NoKey(_))
    ));
    assert_ne!(tls.certificate.current().cert, before.cert);
}

#[tokio::test]
async fn generated_certificate_serves_conversion_over_tls_trusted_by_its_ca() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = Tls::prepare(&TlsSource::Generate {
        hosts: vec![
            "accord-operator-webhook.accord-system.svc".into(),
            "127.0.0.1".into(),
        ],
    })
    .expect("generated");
    let ca = tls.generated_ca.clone().expect("a CA");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Conversion needs no API server; the client only has to exist for the router.
    let client =
        Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    tokio::spawn(serve(listener, tls.server.clone(), router(client)));

    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector
        .connect(name, tcp)
        .await
        .expect("the handshake verifies against the generated CA");
    let body = review(
        "k8s.otterize.com/v1alpha2",
        json!([{"apiVersion": "k8s.otterize.com/v2alpha1", "kind": "ClientIntents",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"workload": {"name": "c"}, "targets": [{"service": {"name": "s"}}]}}]),
    )
    .to_string();
    let request = format!(
        "POST {CONVERT_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json: Value = serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        json["response"]["convertedObjects"][0]["spec"],
        json!({"service": {"name": "c"}, "calls": [{"name": "svc:s"}]})
    );
    assert!(matches!(
        Tls::prepare(&TlsSource::Generate { hosts: vec![] }),
        Err(Error::NoHosts)
    ));
}
