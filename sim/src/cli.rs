//! The `run`, `chaos` and `replay` subcommands: one line per scenario or
//! seed, violations with the command that replays them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::chaos;
use crate::report::{self, Timeline};
use crate::run::{self, RunResult};
use crate::scenario::{LayoutKind, Scenario};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files; default: every scenarios/*.toml, in name order.
    pub files: Vec<PathBuf>,
    /// Run each scenario twice and fail if the trace hashes differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write an HTML report per scenario into this directory.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Also print each run's counters (faults fired, directory operations, outcomes).
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// Most seeds to try per deliberate bug.
    #[arg(long, default_value_t = 200)]
    pub seeds: u64,
    /// The first seed (CI passes a fresh one).
    #[arg(long, default_value_t = 1)]
    pub start: u64,
}

/// `selftest`: every deliberate bug must be caught within the seed budget.
#[cfg(feature = "sim-bugs")]
pub fn selftest(args: SelftestArgs) -> anyhow::Result<bool> {
    use crate::selftest::{CASES, hunt};
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    println!("hunting {} deliberate bugs, up to {} seeds each from seed {}", CASES.len(), args.seeds, args.start);
    println!("{:<30} {:<9} {:<16} {:<7} seeds", "bug", "layout", "invariant", "caught");
    let mut all = true;
    for case in &CASES {
        let found = hunt(case, args.start, args.seeds);
        let (caught, seeds) = match found {
            Some((n, seed)) => ("yes", format!("{n} (seed {seed})")),
            None => ("NO", format!("none of {}", args.seeds)),
        };
        all &= found.is_some();
        let bug = format!("{:?}", case.bug);
        let how = if case.scenario.is_some() { " by its scenario, not yet by chaos" } else { "" };
        println!("{bug:<30} {:<9} {:<16} {caught:<7} {seeds}{how}", case.layout.name(), case.invariant.name());
    }
    Ok(all)
}

/// `selftest` in a build without the deliberate bugs.
#[cfg(not(feature = "sim-bugs"))]
pub fn selftest(_: SelftestArgs) -> anyhow::Result<bool> {
    bail!(
        "the deliberate bugs are not compiled in: cargo run -p tiermail-sim --features sim-bugs -- selftest \
         (a tiermail-node binary built that way refuses to start; rebuild it without the feature afterwards)"
    )
}

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub start: u64,
    /// one-tier: 3 nodes; two-tier: 2 front-ends, 2 back-ends and a failover back-end.
    #[arg(long, value_enum, default_value_t = Layout::OneTier)]
    pub layout: Layout,
    /// Save the shrunk schedule of the first failing seed as a scenario file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Do not shrink failing schedules.
    #[arg(long)]
    pub no_shrink: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The chaos seed.
    pub seed: u64,
    /// The layout the seed was run with.
    #[arg(long, value_enum, default_value_t = Layout::OneTier)]
    pub layout: Layout,
    /// Write an HTML report with an SVG timeline here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the full event log here.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Run the seed twice and report the first divergence, if any.
    #[arg(long)]
    pub check_determinism: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Clients in the throughput run.
    #[arg(long, default_value_t = 20)]
    pub clients: usize,
    /// Chaos seeds per layout for the seeds/min figure.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    OneTier,
    TwoTier,
}

impl From<Layout> for LayoutKind {
    fn from(l: Layout) -> Self {
        match l {
            Layout::OneTier => LayoutKind::OneTier,
            Layout::TwoTier => LayoutKind::TwoTier,
        }
    }
}

/// The scenario files under `dir`, sorted.
pub fn scenario_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn summary(r: &RunResult) -> String {
    format!(
        "{:<4} {:<40} sim {:>7.1}s  wall {:>6.2}s  trace {}",
        if r.passed() { "ok" } else { "FAIL" },
        r.name,
        r.sim_time.as_secs_f64(),
        r.wall_time.as_secs_f64(),
        r.trace_hash
    )
}

fn print_problems(r: &RunResult) {
    for v in &r.violations {
        println!("     violation {v}");
    }
    for u in &r.unmet {
        println!("     unmet: {u}");
    }
}

fn print_counters(r: &RunResult) {
    let counters: Vec<String> = r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("     {}", counters.join(" "));
}

/// `tiermail-sim run`.
pub fn run(args: RunArgs) -> anyhow::Result<bool> {
    let files = if args.files.is_empty() { scenario_files(Path::new("scenarios"))? } else { args.files };
    if files.is_empty() {
        bail!("no scenario files given and none in scenarios/");
    }
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut all_ok = true;
    for file in files {
        let scenario = Scenario::load(&file)?;
        let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let result = if args.check_determinism {
            match run::check_determinism(&name, &scenario) {
                Ok(r) => r,
                Err(divergence) => {
                    println!("FAIL {name}: not deterministic\n     {divergence}");
                    all_ok = false;
                    continue;
                }
            }
        } else {
            run::run(&name, &scenario, false)
        };
        println!("{}", summary(&result));
        if args.verbose {
            print_counters(&result);
        }
        if !result.passed() {
            print_problems(&result);
            println!("     replay: tiermail-sim run {}", file.display());
            all_ok = false;
        }
        if let Some(dir) = &args.report {
            write_report(&dir.join(format!("{name}.html")), &format!("scenario {name}"), &result)?;
        }
    }
    Ok(all_ok)
}

/// `tiermail-sim chaos`.
pub fn chaos(args: ChaosArgs) -> anyhow::Result<bool> {
    if args.seeds == 0 {
        bail!("--seeds 0: give at least 1");
    }
    let layout = LayoutKind::from(args.layout);
    let started = Instant::now();
    let bar = ProgressBar::new(args.seeds);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} seeds {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut failures = Vec::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for seed in args.start..args.start.saturating_add(args.seeds) {
        let scenario = chaos::scenario(seed, layout);
        let result = run::run(&format!("seed {seed}"), &scenario, false);
        for (name, n) in &result.counters {
            *totals.entry(name.clone()).or_default() += n;
        }
        if !result.violations.is_empty() {
            bar.suspend(|| {
                let topology = chaos::describe(&scenario.topology);
                println!("seed {seed} ({topology}): {} violation(s)", result.violations.len());
                print_problems(&result);
            });
            failures.push((scenario, result));
        }
        bar.set_message(format!("{} failing", failures.len()));
        bar.inc(1);
    }
    bar.finish();
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{} seeds ({}) in {:.1} min, {:.0} seeds/min: {} with violations",
        args.seeds,
        layout.name(),
        minutes,
        args.seeds as f64 / minutes.max(1e-9),
        failures.len()
    );
    let fired: Vec<String> = chaos::SOMETIMES.iter().map(|c| format!("{c}={}", totals.get(*c).unwrap_or(&0))).collect();
    println!("sometimes: {}", fired.join(" "));
    let never: Vec<&str> =
        chaos::SOMETIMES.iter().copied().filter(|c| totals.get(*c).copied().unwrap_or(0) == 0).collect();
    let sometimes_ok = args.seeds < chaos::SOMETIMES_MIN_SEEDS || never.is_empty();
    if !sometimes_ok {
        println!("never happened in {} seeds: {} (the schedules do not exercise them)", args.seeds, never.join(", "));
    }
    let Some((scenario, result)) = failures.first() else { return Ok(sometimes_ok) };
    let invariant = chaos::first_broken(result).expect("a failing run has a violation");
    println!("\nfirst failing seed {}: {invariant} violated", scenario.seed);
    println!("topology: {}", chaos::describe(&scenario.topology));
    println!("replay: tiermail-sim replay {} --layout {}", scenario.seed, layout.name());
    if !args.no_shrink {
        let bar = ProgressBar::new_spinner();
        let shrunk = chaos::shrink(scenario, invariant, |n| bar.set_message(format!("shrinking: trial {n}")));
        bar.finish_and_clear();
        println!(
            "shrunk from {} to {} fault(s) still breaking {invariant}:\n{}",
            scenario.faults.len(),
            shrunk.faults.len(),
            shrunk.to_toml()
        );
        if let Some(path) = &args.save {
            std::fs::write(path, shrunk.to_toml()).with_context(|| format!("cannot write {}", path.display()))?;
            println!("saved as {} (run it with: tiermail-sim run {})", path.display(), path.display());
        }
    }
    Ok(false)
}

/// `tiermail-sim replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<bool> {
    let layout = LayoutKind::from(args.layout);
    let scenario = chaos::scenario(args.seed, layout);
    let name = format!("seed {}", args.seed);
    let result = if args.check_determinism {
        match run::check_determinism(&name, &scenario) {
            Ok(result) => {
                println!("deterministic: two runs, trace {}", result.trace_hash);
                result
            }
            Err(divergence) => {
                println!("NOT deterministic: {divergence}");
                return Ok(false);
            }
        }
    } else {
        run::run(&name, &scenario, true)
    };
    println!("{}", summary(&result));
    print_counters(&result);
    println!("topology: {}", chaos::describe(&scenario.topology));
    println!("schedule ({} fault(s)):", scenario.faults.len());
    for f in &scenario.faults {
        let until = f.for_secs.map(|d| format!(" for {d:.1}s")).unwrap_or_default();
        println!("  at {:>5.1}s{until}: {}", f.at, f.fault);
    }
    print_problems(&result);
    if let Some(path) = &args.log {
        std::fs::write(path, result.log.as_deref().unwrap_or(""))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("event log: {}", path.display());
    }
    if let Some(path) = &args.report {
        let title = format!("chaos seed {} ({})", args.seed, layout.name());
        write_report(path, &title, &result)?;
    }
    Ok(result.violations.is_empty())
}

fn write_report(path: &Path, title: &str, result: &RunResult) -> anyhow::Result<()> {
    let facts: Vec<(String, String)> = result.counters.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    let html = report::html(&Timeline {
        title,
        seed: result.seed,
        trace_hash: &result.trace_hash,
        hosts: &result.hosts,
        end: result.sim_time,
        quiet_from: Some(result.quiet_from),
        record: &result.record,
        violations: &result.violations,
        facts: &facts,
    });
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
    println!("report: {}", path.display());
    Ok(())
}

/// `tiermail-sim bench`: simulated seconds per wall second on a one-tier,
/// three-node world with many clients, and chaos seeds per minute.
pub fn bench(args: BenchArgs) -> anyhow::Result<bool> {
    if !(1..=crate::scenario::MAX_CLIENTS).contains(&args.clients) {
        bail!("--clients {}: give 1 to {}", args.clients, crate::scenario::MAX_CLIENTS);
    }
    let scenario = Scenario {
        description: "bench".into(),
        workload: crate::scenario::Workload { clients: args.clients, ..Default::default() },
        ..Scenario::parse("").expect("the empty scenario is valid")
    };
    let result = run::run("bench", &scenario, false);
    let ops = result.record.ops.len();
    println!(
        "one-tier, 3 nodes, {} clients: {:.1} simulated s in {:.2} wall s = {:.1} simulated s per wall s; \
         {ops} client operations ({:.0}/wall s)",
        args.clients,
        result.sim_time.as_secs_f64(),
        result.wall_time.as_secs_f64(),
        result.sim_time.as_secs_f64() / result.wall_time.as_secs_f64().max(1e-9),
        ops as f64 / result.wall_time.as_secs_f64().max(1e-9),
    );
    let mut ok = result.violations.is_empty();
    for layout in [LayoutKind::OneTier, LayoutKind::TwoTier] {
        let started = Instant::now();
        for seed in 1..=args.seeds {
            ok &= run::run("bench", &chaos::scenario(seed, layout), false).violations.is_empty();
        }
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        println!(
            "chaos {}: {} seeds in {:.1} s = {:.0} seeds/min on one core",
            layout.name(),
            args.seeds,
            minutes * 60.0,
            args.seeds as f64 / minutes.max(1e-9)
        );
    }
    Ok(ok)
}
