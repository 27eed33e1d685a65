//! Benchmark: parse + generate + render a synthetic cluster, printing figures.
//!
//! `cargo bench -p accord-policy --bench render` runs the large estate (1,500 workloads, 9,300
//! calls) and ten times that (15,000 workloads in 1,500 namespaces, 100,000 calls). Each size runs
//! in its own process so the peak resident memory reported is that size's alone.

mod support;

use std::time::Instant;

use accord_policy::synthetic::{self, Spec};
use accord_policy::{generate, load, render};

use support::{disable_transparent_huge_pages, ms, peak_rss_mib};

fn run(label: &str, spec: &Spec, rounds: usize) {
    let sources = synthetic::manifests(spec);
    let bytes: usize = sources.iter().map(|s| s.text.len()).sum();
    let mut best = [f64::INFINITY; 4];
    let mut policies = 0;
    for _ in 0..rounds {
        let t0 = Instant::now();
        let (inv, diags) = load(&sources);
        let t1 = Instant::now();
        let g = generate(&inv, &Default::default());
        let t2 = Instant::now();
        let yaml = render::policies_yaml(&g.policies).expect("render");
        let t3 = Instant::now();
        assert!(diags.is_empty() && g.diagnostics.is_empty());
        policies = g.policies.len();
        std::hint::black_box(yaml);
        for (b, v) in best
            .iter_mut()
            .zip([ms(t1 - t0), ms(t2 - t1), ms(t3 - t2), ms(t3 - t0)])
        {
            *b = b.min(v);
        }
    }
    println!(
        "{label}: {} workloads, {} namespaces, {} calls, {:.1} MiB of YAML -> {policies} policies",
        spec.workloads,
        spec.namespaces,
        spec.calls,
        bytes as f64 / 1048576.0
    );
    println!(
        "  best of {rounds}: parse {:.0} ms, generate {:.0} ms, render YAML {:.0} ms, total {:.0} ms (generate+render {:.0} ms); peak RSS {:.0} MiB",
        best[0],
        best[1],
        best[2],
        best[3],
        best[1] + best[2],
        peak_rss_mib()
    );
}

fn main() {
    disable_transparent_huge_pages();
    // `cargo bench` passes `--bench`; a size argument selects one size (used for per-size RSS).
    let size = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let [cmd, size, dir] = args.as_slice()
        && (cmd == "write" || cmd == "write-applied")
    {
        // Write a synthetic cluster to disk, for timing the `accord` binary end to end: as
        // declared (`write`), or as the operator leaves it, with generated labels and policies
        // (`write-applied`).
        let spec = if size == "10x" {
            Spec::TEN_X
        } else {
            Spec::LARGE
        };
        let sources = if cmd == "write" {
            synthetic::manifests(&spec)
        } else {
            synthetic::applied_manifests(&spec)
        };
        for s in sources {
            let path = std::path::Path::new(dir).join(&s.path);
            std::fs::create_dir_all(path.parent().expect("file in a directory"))
                .expect("create dir");
            std::fs::write(&path, &s.text).expect("write manifests");
        }
        return;
    }
    match size.as_deref() {
        Some("large") => run("large estate", &Spec::LARGE, 5),
        Some("10x") => run("ten times larger", &Spec::TEN_X, 3),
        _ => {
            let exe = std::env::current_exe().expect("own path");
            for size in ["large", "10x"] {
                let status = std::process::Command::new(&exe)
                    .arg(size)
                    .status()
                    .expect("run bench");
                assert!(status.success());
            }
        }
    }
}
