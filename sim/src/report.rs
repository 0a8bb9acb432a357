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
        w!(out, "fill=\"{QUIET_BLUE}\" fill-opacity=\"0.07\"/>\n");
    }
    for fault in &t.record.faults {
        fault_band(out, fault, &scale, &lanes, t.hosts.len());
    }
    for op in &t.record.ops {
        operation(out, op, &scale, &lanes);
    }
    for (lane, names) in &violated {
        w!(out, "<rect class=\"violation-lane\" x=\"{LABEL_WIDTH:.1}\" y=\"{:.1}\" ", Lanes::top(*lane) + 1.0);
        w!(
            out,
            "width=\"{PLOT_WIDTH:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"{VIOLATION_RED}\" ",
            LANE_HEIGHT - 2.0
        );
        w!(out, "stroke-width=\"2\"><title>violated here: {}</title></rect>\n", EscList(names));
    }
    for v in t.violations {
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
mod tests {
    use super::*;
    use crate::history::{FaultMark, OpKind};
    use crate::invariants::Invariant;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn op(client: &str, via: &str, start: f64, end: f64, outcome: Outcome) -> Op {
        Op {
            client: client.into(),
            kind: OpKind::Deliver,
            via: via.into(),
            users: vec!["alice".into()],
            sent: vec![],
            seen: vec![],
            start: secs(start),
            end: secs(end),
            outcome,
            quiet: false,
        }
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn render(hosts: &[String], end: f64, record: &Record, violations: &[Violation]) -> String {
        html(&Timeline {
            title: "scenario test",
            seed: 7,
            trace_hash: "abc123",
            hosts,
            end: secs(end),
            quiet_from: None,
            record,
            violations,
            facts: &[],
        })
    }

    /// Every opened element is closed, in order (void and self-closing
    /// tags aside); escaped text leaves no stray '<'.
    fn assert_well_formed(doc: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = doc;
        while let Some(start) = rest.find('<') {
            let len = rest[start..].find('>').expect("unterminated tag");
            let tag = &rest[start + 1..start + len];
            rest = &rest[start + len + 1..];
            if tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "mismatched </{name}>");
                continue;
            }
            let name = tag.split_whitespace().next().expect("empty tag");
            if name != "meta" {
                open.push(name);
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
    }

    /// The opening tag of the first element with this class.
    fn tag_of_class<'d>(doc: &'d str, class: &str) -> &'d str {
        let at = doc.find(&format!("class=\"{class}\"")).unwrap_or_else(|| panic!("no element of class {class}"));
        let start = doc[..at].rfind('<').unwrap();
        &doc[start..at + doc[at..].find('>').unwrap()]
    }

    #[test]
    fn hostile_names_and_labels_are_escaped() {
        let evil = "<script>alert('x')</script>";
        let lanes = hosts(&[evil, "node-a"]);
        let mut bad = op(evil, "\"><img src=x onerror=y>:25", 1.0, 2.0, Outcome::Permanent("</svg><b>".into()));
        bad.users = vec!["<u>&".into()];
        let record = Record {
            ops: vec![bad],
            faults: vec![FaultMark { at: secs(1.0), until: None, hosts: lanes.clone(), label: "<i>crash</i>".into() }],
        };
        let violations = [Violation {
            invariant: Invariant::Routing,
            detail: "mail for <bob> & 'carol'".into(),
            at: Some(secs(1.5)),
            hosts: vec![evil.into()],
        }];
        let facts = [("<k>".to_string(), "\"v\"\u{0}".to_string())];
        let doc = html(&Timeline {
            title: "a <title> & \"more\"",
            seed: 1,
            trace_hash: "<hash>",
            hosts: &lanes,
            end: secs(3.0),
            quiet_from: None,
            record: &record,
            violations: &violations,
            facts: &facts,
        });
        for raw in ["<script", "<img", "<b>", "<u>", "<i>", "<bob>", "<k>", "<hash>", "<title> &", "\u{0}"] {
            assert!(!doc.contains(raw), "unescaped {raw:?}");
        }
        assert!(doc.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(doc.contains("mail for &lt;bob&gt; &amp; &#39;carol&#39;"));
        assert!(doc.contains("&quot;&gt;&lt;img src=x onerror=y&gt;:25"));
        assert!(doc.contains("<h1>a &lt;title&gt; &amp; &quot;more&quot;</h1>"));
        assert!(doc.contains("<td>&quot;v&quot;\u{fffd}</td>"));
        assert_well_formed(&doc);
    }

    #[test]
    fn one_lane_per_host_in_order() {
        let lanes = hosts(&["node-a", "node-b", "dir-1", "client-1"]);
        let doc = render(&lanes, 10.0, &Record::default(), &[]);
        assert_eq!(doc.matches("<rect class=\"lane\"").count(), 4);
        let labels: Vec<&str> = doc
            .split("<text class=\"lane-label\"")
            .skip(1)
            .map(|s| &s[s.find('>').unwrap() + 1..s.find("</text>").unwrap()])
            .collect();
        assert_eq!(labels, ["node-a", "node-b", "dir-1", "client-1"]);
        // Lanes stack top to bottom.
        assert!(tag_of_class(&doc, "lane").contains(&format!("y=\"{TOP:.1}\"")));
        assert!(
            doc.contains(&format!("<text class=\"lane-label\" x=\"174.0\" y=\"{:.1}\"", TOP + 3.5 * LANE_HEIGHT + 4.0))
        );
    }

    #[test]
    fn violation_line_is_drawn_at_its_time() {
        let lanes = hosts(&["node-a", "client-1"]);
        let violations = [
            Violation {
                invariant: Invariant::AckedNotLost,
                detail: "m1 lost".into(),
                at: Some(secs(2.5)),
                hosts: vec!["node-a:25".into()],
            },
            Violation { invariant: Invariant::NoDuplicate, detail: "m2 twice".into(), at: None, hosts: vec![] },
        ];
        let doc = render(&lanes, 10.0, &Record::default(), &violations);
        // 2.5 s of 10 s: a quarter into the plot.
        let x = LABEL_WIDTH + PLOT_WIDTH / 4.0;
        assert_eq!(x, 480.0);
        assert!(doc.contains("<line class=\"violation\" x1=\"480.0\" y1=\"12.0\" x2=\"480.0\""));
        assert_eq!(doc.matches("<line class=\"violation\"").count(), 1, "a violation without a time is not drawn");
        assert!(tag_of_class(&doc, "violation-lane").contains(&format!("y=\"{:.1}\"", TOP + 1.0)));
        assert_eq!(doc.matches("class=\"violation-lane\"").count(), 1);
        assert!(doc.contains("<p class=\"verdict fail\">2 violations</p>"));
        assert!(doc.contains("<li><strong>no-duplicate</strong> (whole run): m2 twice</li>"));
        assert!(doc.contains("<li><strong>acked-not-lost</strong> at 2.500s: m1 lost"));
    }

    #[test]
    fn outcome_classes_have_their_colours() {
        let lanes = hosts(&["proxy-1", "c1", "c2", "c3", "c4"]);
        let record = Record {
            ops: vec![
                op("c1", "proxy-1:25", 1.0, 2.0, Outcome::Ok),
                op("c2", "proxy-1:25", 1.0, 2.0, Outcome::Temporary("451".into())),
                op("c3", "proxy-1:25", 1.0, 2.0, Outcome::Permanent("550".into())),
                op("c4", "proxy-1:25", 1.0, 2.0, Outcome::Unknown("timeout".into())),
            ],
            faults: vec![],
        };
        let doc = render(&lanes, 4.0, &record, &[]);
        for (class, colour) in
            [("ok", "#2e9d4a"), ("temporary", "#e0a020"), ("permanent", "#d0342c"), ("unknown", "#8c8c8c")]
        {
            assert!(tag_of_class(&doc, &format!("op {class}")).contains(&format!("fill=\"{colour}\"")), "{class}");
        }
        // The port is stripped to find the proxy's lane: one mark each.
        assert_eq!(doc.matches("<rect class=\"via\"").count(), 4);
        assert!(tag_of_class(&doc, "via").contains(&format!("y=\"{:.1}\"", TOP + LANE_HEIGHT - 5.0)));
        assert!(
            doc.contains("<tr><th><span class=\"swatch\" style=\"background:#e0a020\"></span>temporary</th><td>1</td>")
        );
    }

    #[test]
    fn fault_band_runs_to_the_end_when_not_healed() {
        let lanes = hosts(&["node-a", "node-b"]);
        let record = Record {
            ops: vec![],
            faults: vec![FaultMark {
                at: secs(2.0),
                until: None,
                hosts: vec!["node-b".into()],
                label: "crash node-b".into(),
            }],
        };
        let doc = render(&lanes, 10.0, &record, &[]);
        let band = tag_of_class(&doc, "fault");
        assert!(band.contains(&format!("x=\"420.0\" y=\"{:.1}\" width=\"960.0\"", TOP + LANE_HEIGHT)), "{band}");
        assert!(doc.contains("crash node-b from 2.000s (not healed) [node-b]</title>"));
    }

    #[test]
    fn empty_record_renders_a_valid_document() {
        let doc = render(&[], 0.0, &Record::default(), &[]);
        assert!(doc.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(doc.ends_with("</svg>\n</div>\n</body>\n</html>\n"));
        assert!(doc.contains("<p class=\"verdict pass\">no violations</p>"));
        assert!(doc.contains("<tr><th>operations</th><td>0</td></tr>"));
        assert!(!doc.contains("class=\"op "));
        // A zero-length run still gets an axis: 0 to 1 s in tenths.
        assert!(doc.contains(">0.0</text>") && doc.contains(">1.0</text>"));
        assert_well_formed(&doc);
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(10.0), (1.0, 0));
        assert_eq!(tick_step(3.0), (0.5, 1));
        assert_eq!(tick_step(120.0), (20.0, 0));
        assert_eq!(tick_step(0.07), (0.01, 2));
    }

    #[test]
    fn output_is_deterministic() {
        let lanes = hosts(&["node-a", "node-b", "client-1", "client-2"]);
        let mut record = Record::default();
        for i in 0..10_000u32 {
            let client = if i % 2 == 0 { "client-1" } else { "client-2" };
            let outcome = if i % 7 == 0 { Outcome::Temporary("451".into()) } else { Outcome::Ok };
            record.ops.push(op(client, "node-a:25", f64::from(i) * 0.01, f64::from(i) * 0.01 + 0.02, outcome));
        }
        record.faults.push(FaultMark {
            at: secs(5.0),
            until: Some(secs(9.0)),
            hosts: lanes[..2].to_vec(),
            label: "partition".into(),
        });
        let first = render(&lanes, 100.0, &record, &[]);
        let second = render(&lanes, 100.0, &record.clone(), &[]);
        assert_eq!(first, second);
        assert_eq!(first.matches("class=\"op ").count(), 10_000);
        assert_well_formed(&first);
    }
}
