//! Tests of the HTML report: escaping, lanes, marks, determinism.

use super::*;
use crate::history::{FaultMark, OpKind};
use crate::invariants::Invariant;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn op(client: &str, via: &str, start: f64, end: f64, outcome: Outcome) -> Op {
    Op {
        removed: Vec::new(),
        uids: Vec::new(),
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
