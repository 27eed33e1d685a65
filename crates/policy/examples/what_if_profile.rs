//! Times the what-if engine's phases at the benchmark's sizes (for profiling; not a test).
//! `cargo run --release -p accord-policy --example what_if_profile [large|ten_x] [N]`

use std::time::Instant;

use accord_policy::drift::what_if::{self, Generation};
use accord_policy::synthetic::{self, Spec};
use std::collections::{BTreeSet, HashMap};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The live analysis indexed by workload, as the server's view is.
struct Indexed {
    facts: Vec<((String, String), accord_policy::drift::changes::PairFacts)>,
    by_end: HashMap<String, Vec<usize>>,
    open_omitted: bool,
}

impl what_if::Live for Indexed {
    fn open_omitted(&self) -> bool {
        self.open_omitted
    }
    fn pairs(
        &self,
        touched: Option<&BTreeSet<String>>,
    ) -> Vec<((String, String), accord_policy::drift::changes::PairFacts)> {
        let Some(t) = touched else {
            return self.facts.clone();
        };
        let at: BTreeSet<usize> = t
            .iter()
            .flat_map(|id| self.by_end.get(id).into_iter().flatten().copied())
            .collect();
        at.into_iter().map(|i| self.facts[i].clone()).collect()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = match args.get(1).map(String::as_str) {
        Some("ten_x") => Spec::TEN_X,
        _ => Spec::LARGE,
    };
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let t = Instant::now();
    let live = synthetic::applied_inventory(&spec);
    eprintln!("inventory {:?}", t.elapsed());
    let opts = Default::default();
    let t = Instant::now();
    let prepared = accord_policy::evaluate::Prepared::new(&live);
    eprintln!("prepared {:?}", t.elapsed());
    let report = accord_policy::drift::analyze_prepared(&live, &opts, &prepared);
    eprintln!("analyze {:?} ({} edges)", t.elapsed(), report.edges.len());
    let facts: Vec<_> = what_if::facts(&report.edges).collect();
    let mut by_end: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, ((s, d), _)) in facts.iter().enumerate() {
        by_end.entry(s.clone()).or_default().push(i);
        by_end.entry(d.clone()).or_default().push(i);
    }
    let indexed = Indexed {
        open_omitted: what_if::Live::open_omitted(&report),
        facts,
        by_end,
    };
    let intents = accord_policy::synthetic::draft_with_one_more_target(&live);
    for _ in 0..n {
        let t = Instant::now();
        let applied = what_if::apply(&live, vec![intents.clone()], &opts, Generation::Subjects);
        let a = t.elapsed();
        let t = Instant::now();
        let c = what_if::pair_changes_prepared(&indexed, &live, &prepared, &applied, &opts);
        let b = t.elapsed();
        // What the operator fixes anyway for the same subjects (listed apart by the server).
        let t = Instant::now();
        let fixed = what_if::reconcile(&live, &applied, &opts);
        let anyway = if fixed.is_noop() {
            0
        } else {
            what_if::pair_changes_prepared(&indexed, &live, &prepared, &fixed, &opts).len()
        };
        let r = t.elapsed();
        eprintln!(
            "apply {a:?} pair_changes {b:?} reconcile {r:?} touched {} changes {} fixed anyway {anyway}",
            applied.touched.len(),
            c.len()
        );
    }
}
