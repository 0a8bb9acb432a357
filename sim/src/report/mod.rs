//! A run as one self-contained HTML page: a header saying what ran and
//! whether an invariant broke, and an inline SVG timeline of every client
//! operation, fault and violation in simulated time, one lane per host.
//! Plain string building, no scripts, no external resources; the same input
//! gives the same bytes, so a report can be diffed between two replays.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::time::Duration;

use crate::history::{Op, Outcome, Record};
use crate::invariants::Violation;

/// Width of the plot area (the time axis), in px: wide enough to tell
/// operations apart, narrow enough for a laptop screen.
const PLOT_WIDTH: f64 = 1200.0;
/// Room left of the plot for lane names.
const LABEL_WIDTH: f64 = 180.0;
const RIGHT_MARGIN: f64 = 20.0;
/// Room above the first lane for the quiet-phase and violation labels.
const TOP: f64 = 24.0;
const LANE_HEIGHT: f64 = 24.0;
/// Room below the last lane for the time axis.
const AXIS_HEIGHT: f64 = 40.0;
const BAR_HEIGHT: f64 = 12.0;
/// Instant operations still get a visible bar.
const MIN_BAR_WIDTH: f64 = 3.0;
/// Aim for about this many labelled ticks on the time axis.
const TARGET_TICKS: f64 = 10.0;

/// Outcome classes in the order the report lists them, with their colours.
const CLASSES: [(&str, &str); 4] =
    [("ok", "#2e9d4a"), ("temporary", "#e0a020"), ("permanent", "#d0342c"), ("unknown", "#8c8c8c")];
const VIOLATION_RED: &str = "#d0342c";
const FAULT_PURPLE: &str = "#7a4fd0";
const QUIET_BLUE: &str = "#3a7bd5";

/// Writing into a `String` cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// What the report shows.
pub struct Timeline<'a> {
    /// e.g. "scenario one-tier-happy-path" or "chaos seed 42 (two-tier)"
    pub title: &'a str,
    pub seed: u64,
    pub trace_hash: &'a str,
    /// Lanes, top to bottom: node hosts, directory hosts, client hosts.
    pub hosts: &'a [String],
    /// Simulated end of the run.
    pub end: Duration,
    /// When the quiet phase (faults healed) began, if any.
    pub quiet_from: Option<Duration>,
    pub record: &'a Record,
    pub violations: &'a [Violation],
    /// Extra lines shown in a summary table (e.g. fault counters "crash: 2").
    pub facts: &'a [(String, String)],
}

/// Renders the whole report as one standalone HTML5 document.
pub fn html(t: &Timeline<'_>) -> String {
    let mut out = String::with_capacity(8192 + t.record.ops.len() * 400);
    header(&mut out, t);
    timeline(&mut out, t);
    out.push_str("</body>\n</html>\n");
    out
}

/// The document head and everything above the timeline.
fn header(out: &mut String, t: &Timeline<'_>) {
    w!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    w!(out, "<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n", Esc(t.title), CSS);
    w!(out, "<h1>{}</h1>\n<table class=\"summary\">\n", Esc(t.title));
    w!(out, "<tr><th>seed</th><td>{}</td></tr>\n", t.seed);
    w!(out, "<tr><th>trace hash</th><td><code>{}</code></td></tr>\n", Esc(t.trace_hash));
    w!(out, "<tr><th>simulated duration</th><td>{}</td></tr>\n", Secs(t.end));
    if let Some(quiet) = t.quiet_from {
        w!(out, "<tr><th>quiet phase from</th><td>{}</td></tr>\n", Secs(quiet));
    }
    let mut counts = [0usize; CLASSES.len()];
    for op in &t.record.ops {
        counts[class_index(&op.outcome)] += 1;
    }
    w!(out, "<tr><th>operations</th><td>{}</td></tr>\n", t.record.ops.len());
    for ((class, colour), count) in CLASSES.iter().zip(counts) {
        w!(
            out,
            "<tr><th><span class=\"swatch\" style=\"background:{colour}\"></span>{class}</th><td>{count}</td></tr>\n"
        );
    }
    w!(out, "<tr><th>faults</th><td>{}</td></tr>\n</table>\n", t.record.faults.len());

    match t.violations.len() {
        0 => w!(out, "<p class=\"verdict pass\">no violations</p>\n"),
        1 => w!(out, "<p class=\"verdict fail\">1 violation</p>\n"),
        n => w!(out, "<p class=\"verdict fail\">{n} violations</p>\n"),
    }
    if !t.violations.is_empty() {
        out.push_str("<ol class=\"violations\">\n");
        for v in t.violations {
            w!(out, "<li><strong>{}</strong> ", Esc(v.invariant.name()));
            match v.at {
                Some(at) => w!(out, "at {}", Secs(at)),
                None => w!(out, "(whole run)"),
            }
            w!(out, ": {}", Esc(&v.detail));
            if !v.hosts.is_empty() {
                w!(out, " <span class=\"hosts\">[{}]</span>", EscList(&v.hosts));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ol>\n");
    }
    if !t.facts.is_empty() {
        out.push_str("<h2>Facts</h2>\n<table class=\"facts\">\n");
        for (key, value) in t.facts {
            w!(out, "<tr><th>{}</th><td>{}</td></tr>\n", Esc(key), Esc(value));
        }
        out.push_str("</table>\n");
    }
}

const CSS: &str = "body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 2px 12px 2px 0; font-weight: normal; }
th { color: #555; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
.verdict { font-size: 1.2em; font-weight: bold; }
.verdict.pass { color: #2e9d4a; }
.verdict.fail { color: #d0342c; }
.violations li { margin: 0.2em 0; }
.hosts { color: #777; }
.plot { overflow-x: auto; }
";

/// The SVG timeline: lanes, shading, operations, then marks on top.
fn timeline(out: &mut String, t: &Timeline<'_>) {
    let scale = Scale::new(t);
    let lanes = Lanes::new(t.hosts);
    let lanes_bottom = Lanes::top(t.hosts.len());
    let width = LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN;
    let height = lanes_bottom + AXIS_HEIGHT;
    w!(out, "<h2>Timeline</h2>\n<div class=\"plot\">\n");
    w!(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" ");
    w!(out, "viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n");

    let mut violated: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    for v in t.violations {
        for lane in v.hosts.iter().filter_map(|h| lanes.of(h)) {
            violated.entry(lane).or_default().insert(v.invariant.name());
        }
    }
    for (i, host) in t.hosts.iter().enumerate() {
        let (y, fill) = (Lanes::top(i), if i % 2 == 0 { "#f7f7f7" } else { "#ffffff" });
        w!(out, "<rect class=\"lane\" x=\"{LABEL_WIDTH:.1}\" y=\"{y:.1}\" width=\"{PLOT_WIDTH:.1}\" ");
        w!(out, "height=\"{LANE_HEIGHT:.1}\" fill=\"{fill}\"/>\n");
        let colour = if violated.contains_key(&i) { VIOLATION_RED } else { "#222" };
        w!(out, "<text class=\"lane-label\" x=\"{:.1}\" y=\"{:.1}\" ", LABEL_WIDTH - 6.0, y + LANE_HEIGHT / 2.0 + 4.0);
        w!(out, "text-anchor=\"end\" fill=\"{colour}\">{}</text>\n", Esc(host));
    }
    ticks(out, &scale, lanes_bottom);
    if let Some(quiet) = t.quiet_from {
        let x = scale.x(quiet);
        let w = scale.x(scale.end) - x;
        w!(
            out,
            "<rect class=\"quiet\" x=\"{x:.1}\" y=\"{TOP:.1}\" width=\"{w:.1}\" height=\"{:.1}\" ",
            lanes_bottom - TOP
        );
        w!(out, "fill=\"{QUIET_BLUE}\" fill-opacity=\"0.1\"/>\n");
    }
    for fault in &t.record.faults {
        fault_band(out, fault, &scale, &lanes, t.hosts.len());
    }
    for op in &t.record.ops {
        operation(out, op, &scale, &lanes);
    }
    violation_marks(out, t.violations, &violated, &scale, lanes_bottom);
    if let Some(quiet) = t.quiet_from {
        let x = scale.x(quiet);
        w!(
            out,
            "<line class=\"quiet-line\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.1}\" ",
            TOP - 4.0
        );
        w!(
            out,
            "stroke=\"{QUIET_BLUE}\" stroke-dasharray=\"4 3\"><title>quiet phase from {}</title></line>\n",
            Secs(quiet)
        );
        w!(out, "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{QUIET_BLUE}\">quiet</text>\n", x + 3.0, TOP - 4.0);
    }
    out.push_str("</svg>\n</div>\n");
}

/// Violations on top of everything: a red outline on each lane involved and
/// a red line at the time of each violation that has one.
fn violation_marks(
    out: &mut String,
    violations: &[Violation],
    violated: &BTreeMap<usize, BTreeSet<&str>>,
    scale: &Scale,
    lanes_bottom: f64,
) {
    for (lane, names) in violated {
        w!(out, "<rect class=\"violation-lane\" x=\"{LABEL_WIDTH:.1}\" y=\"{:.1}\" ", Lanes::top(*lane) + 1.0);
        w!(
            out,
            "width=\"{PLOT_WIDTH:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"{VIOLATION_RED}\" ",
            LANE_HEIGHT - 2.0
        );
        w!(out, "stroke-width=\"2\"><title>violated here: {}</title></rect>\n", EscList(names));
    }
    for v in violations {
        let Some(at) = v.at else { continue };
        let x = scale.x(at);
        w!(
            out,
            "<line class=\"violation\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.1}\" ",
            TOP - 12.0
        );
        w!(
            out,
            "stroke=\"{VIOLATION_RED}\" stroke-width=\"2\"><title>{} at {}: {}</title></line>\n",
            Esc(v.invariant.name()),
            Secs(at),
            Esc(&v.detail)
        );
        w!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{VIOLATION_RED}\">{}</text>\n",
            x + 3.0,
            TOP - 14.0,
            Esc(v.invariant.name())
        );
    }
}

/// Grid lines and labels at round steps of simulated seconds.
fn ticks(out: &mut String, scale: &Scale, lanes_bottom: f64) {
    let (step, decimals) = tick_step(scale.span);
    let count = (scale.span / step + 1e-9).floor() as u64;
    w!(
        out,
        "<line class=\"axis\" x1=\"{LABEL_WIDTH:.1}\" y1=\"{lanes_bottom:.1}\" x2=\"{:.1}\" ",
        LABEL_WIDTH + PLOT_WIDTH
    );
    w!(out, "y2=\"{lanes_bottom:.1}\" stroke=\"#444\"/>\n");
    for k in 0..=count {
        let secs = k as f64 * step;
        let x = scale.x_secs(secs);
        w!(out, "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" ", lanes_bottom + 4.0);
        w!(out, "stroke=\"#ddd\"/>\n<text class=\"tick-label\" x=\"{x:.1}\" y=\"{:.1}\" ", lanes_bottom + 16.0);
        w!(out, "text-anchor=\"middle\">{secs:.decimals$}</text>\n");
    }
    w!(out, "<text x=\"{:.1}\" y=\"{:.1}\" ", LABEL_WIDTH + PLOT_WIDTH / 2.0, lanes_bottom + 32.0);
    w!(out, "text-anchor=\"middle\" fill=\"#555\">simulated seconds</text>\n");
}

/// A round tick step (1, 2 or 5 times a power of ten) giving about
/// [`TARGET_TICKS`] ticks over `span` seconds, and the decimals it needs.
fn tick_step(span: f64) -> (f64, usize) {
    let raw = span / TARGET_TICKS;
    let exponent = raw.log10().floor() as i32;
    let magnitude = 10f64.powi(exponent);
    let (multiplier, exponent) = match raw / magnitude {
        r if r <= 1.0 => (1.0, exponent),
        r if r <= 2.0 => (2.0, exponent),
        r if r <= 5.0 => (5.0, exponent),
        _ => (1.0, exponent + 1),
    };
    (multiplier * 10f64.powi(exponent), (-exponent).max(0) as usize)
}

/// A translucent band over each lane the fault touched (over every lane if
/// it names no drawn host, so it is never invisible), labelled once.
fn fault_band(
    out: &mut String,
    fault: &crate::history::FaultMark,
    scale: &Scale,
    lanes: &Lanes<'_>,
    lane_count: usize,
) {
    let x = scale.x(fault.at);
    let w = (scale.x(fault.until.unwrap_or(scale.end)) - x).max(2.0);
    let touched: BTreeSet<usize> = fault.hosts.iter().filter_map(|h| lanes.of(h)).collect();
    let spans: Vec<(f64, f64)> = if touched.is_empty() {
        vec![(TOP, Lanes::top(lane_count) - TOP)]
    } else {
        touched.iter().map(|&i| (Lanes::top(i), LANE_HEIGHT)).collect()
    };
    for &(y, h) in &spans {
        w!(out, "<rect class=\"fault\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" ");
        w!(out, "fill=\"{FAULT_PURPLE}\" fill-opacity=\"0.18\"><title>{} from {} ", Esc(&fault.label), Secs(fault.at));
        match fault.until {
            Some(until) => w!(out, "until {}", Secs(until)),
            None => w!(out, "(not healed)"),
        }
        w!(out, " [{}]</title></rect>\n", EscList(&fault.hosts));
    }
    let y = spans[0].0 + 9.0;
    w!(out, "<text class=\"fault-label\" x=\"{:.1}\" y=\"{y:.1}\" font-size=\"9\" ", x + 2.0);
    w!(out, "fill=\"{FAULT_PURPLE}\">{}</text>\n", Esc(&fault.label));
}

/// A bar in the client's lane, plus a thin mark in the lane of the host it
/// talked to. Operations of hosts without a lane are not drawn.
fn operation(out: &mut String, op: &Op, scale: &Scale, lanes: &Lanes<'_>) {
    let Some(lane) = lanes.of(&op.client) else { return };
    let (class, colour) = CLASSES[class_index(&op.outcome)];
    let x = scale.x(op.start);
    let w = (scale.x(op.end) - x).max(MIN_BAR_WIDTH);
    if let Some(via) = lanes.of(&op.via).filter(|&via| via != lane) {
        let y = Lanes::top(via) + LANE_HEIGHT - 5.0;
        w!(out, "<rect class=\"via\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"3\" fill=\"{colour}\" ");
        w!(out, "fill-opacity=\"0.6\"/>\n");
    }
    let y = Lanes::top(lane) + (LANE_HEIGHT - BAR_HEIGHT) / 2.0;
    w!(out, "<rect class=\"op {class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR_HEIGHT:.1}\" ");
    w!(out, "fill=\"{colour}\"><title>{} via {}\nusers: {}\n", op.kind.name(), Esc(&op.via), EscList(&op.users));
    w!(out, "{}", op.outcome.class());
    if !op.outcome.detail().is_empty() {
        w!(out, ": {}", Esc(op.outcome.detail()));
    }
    w!(out, "\n{} – {}", Secs(op.start), Secs(op.end));
    if op.quiet {
        out.push_str(" (quiet phase)");
    }
    out.push_str("</title></rect>\n");
}

/// Position of an outcome's class in [`CLASSES`].
fn class_index(outcome: &Outcome) -> usize {
    match outcome {
        Outcome::Ok => 0,
        Outcome::Temporary(_) => 1,
        Outcome::Permanent(_) => 2,
        Outcome::Unknown(_) => 3,
    }
}

/// Maps simulated time onto the plot's x axis.
struct Scale {
    /// The right edge: the run's end, stretched to anything recorded later.
    end: Duration,
    /// `end` in seconds, never zero.
    span: f64,
}

impl Scale {
    fn new(t: &Timeline<'_>) -> Scale {
        let ops = t.record.ops.iter().map(|op| op.end.max(op.start));
        let faults = t.record.faults.iter().map(|f| f.until.unwrap_or(f.at).max(f.at));
        let violations = t.violations.iter().filter_map(|v| v.at);
        let latest = ops.chain(faults).chain(violations).chain(t.quiet_from).fold(t.end, Duration::max);
        let end = if latest.is_zero() { Duration::from_secs(1) } else { latest };
        Scale { end, span: end.as_secs_f64() }
    }

    fn x(&self, at: Duration) -> f64 {
        self.x_secs(at.as_secs_f64())
    }

    fn x_secs(&self, secs: f64) -> f64 {
        LABEL_WIDTH + (secs / self.span).clamp(0.0, 1.0) * PLOT_WIDTH
    }
}

/// Which lane shows a host; a name listed twice keeps its first lane.
struct Lanes<'a> {
    index: BTreeMap<&'a str, usize>,
}

impl<'a> Lanes<'a> {
    fn new(hosts: &'a [String]) -> Lanes<'a> {
        let mut index = BTreeMap::new();
        for (i, host) in hosts.iter().enumerate() {
            index.entry(host.as_str()).or_insert(i);
        }
        Lanes { index }
    }

    /// The lane of `host`, which may be an address "host:port".
    fn of(&self, host: &str) -> Option<usize> {
        self.index.get(host).or_else(|| strip_port(host).and_then(|h| self.index.get(h))).copied()
    }

    fn top(lane: usize) -> f64 {
        TOP + lane as f64 * LANE_HEIGHT
    }
}

/// "node-a:143" → "node-a"; None when there is no numeric port.
fn strip_port(addr: &str) -> Option<&str> {
    let (host, port) = addr.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(host)
}

/// Text made safe for HTML and SVG, in element content and in attributes.
/// Control characters other than newline and tab become U+FFFD.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in self.0.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                '\n' | '\t' => continue,
                c if c.is_control() => "\u{fffd}",
                _ => continue,
            };
            f.write_str(&self.0[plain..i])?;
            f.write_str(replacement)?;
            plain = i + c.len_utf8();
        }
        f.write_str(&self.0[plain..])
    }
}

/// Escaped items joined with ", ".
struct EscList<'a, T>(&'a T);

impl<'a, T> fmt::Display for EscList<'a, T>
where
    &'a T: IntoIterator<Item: AsRef<str>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            Esc(item.as_ref()).fmt(f)?;
        }
        Ok(())
    }
}

/// Simulated time as seconds with milliseconds.
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
