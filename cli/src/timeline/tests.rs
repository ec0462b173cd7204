//! The page for a W3 double spend: it names the violation's account and
//! version, marks its proof, fetches nothing, and cannot be broken out of
//! by what the data says.

use super::*;
use lanes::Lanes;
use marlow_scenarios::Scenario;
use marlow_sim::run::{run, RunOptions, RunReport};

fn facts(report: &RunReport) -> RunFacts<'_> {
    RunFacts {
        scenario: &report.scenario,
        design: report.design,
        seed: report.seed,
        trace_hash: report.trace_hash.to_string(),
        simulated_us: report.simulated_us,
        repro: "marlow repro w3-check-then-act --seed N".to_string(),
    }
}

/// The first W3 seed whose headline is an overdraft (S1): two withdrawals
/// that passed one snapshot.
fn double_spend() -> RunReport {
    let scenario = Scenario::load_named("w3-check-then-act").expect("shipped");
    (0..50)
        .map(|seed| {
            run(
                &scenario,
                &RunOptions {
                    seed,
                    ..RunOptions::default()
                },
            )
        })
        .find(|report| {
            marlow_sim::verdict::headline(&report.violations)
                .is_some_and(|violation| violation.invariant == Invariant::S1)
        })
        .expect("W3 overdraws within 50 seeds")
}

/// The JSON object the page carries.
fn data_of(html: &str) -> serde_json::Value {
    let start =
        html.find("application/json\">").expect("data script") + "application/json\">".len();
    let end = start + html[start..].find("</script>").expect("closed");
    serde_json::from_str(&html[start..end]).expect("valid JSON")
}

#[test]
fn a_double_spend_page_names_the_account_and_version_and_marks_the_proof() {
    let report = double_spend();
    let html = render(
        &facts(&report),
        report.history.entries(),
        &report.violations,
    );
    let headline = marlow_sim::verdict::headline(&report.violations).expect("fails");
    let data = data_of(&html);
    let shown = &data["violations"][0];
    assert_eq!(shown["code"], "S1");
    let account = headline.account.expect("an overdraft names its account").0;
    assert_eq!(shown["account"], account);
    assert_eq!(shown["version"], headline.version.expect("and its version"));
    assert!(
        html.contains(&format!("\"account {account}\"")),
        "the account has a lane"
    );
    // The violating event is drawn, marked, and its label shows the
    // negative balance a person looks for.
    let items = data["items"].as_array().expect("items");
    let violating = items
        .iter()
        .find(|item| item["seq"] == headline.history_seq)
        .expect("the violating entry is drawn");
    assert_eq!(violating["proof"], true);
    let label = violating["label"].as_str().expect("label");
    assert!(
        label.contains("withdrawn") && label.contains("balance -"),
        "{label}"
    );
    // The proof holds more than the violating entry: the commands behind it.
    assert!(
        shown["proof"].as_array().expect("proof").len() >= 3,
        "{shown}"
    );
}

#[test]
fn the_page_fetches_nothing() {
    let report = double_spend();
    let html = render(
        &facts(&report),
        report.history.entries(),
        &report.violations,
    );
    for fetch in [
        "<link",
        " src=",
        "fetch(",
        "XMLHttpRequest",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(fetch), "the page loads something: {fetch}");
    }
    // The only URL is the SVG namespace, which is a name, not a fetch.
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
}

#[test]
fn data_cannot_close_the_script_element() {
    let mut report = double_spend();
    report.violations[0].message = "</script><script>alert(1)</script>".to_string();
    let html = render(
        &facts(&report),
        report.history.entries(),
        &report.violations,
    );
    let data = data_of(&html);
    assert_eq!(
        data["violations"][0]["message"],
        "</script><script>alert(1)</script>"
    );
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "only the page's own two scripts close"
    );
    report.violations[0].message = "<!--<script>".to_string();
    let html = render(
        &facts(&report),
        report.history.entries(),
        &report.violations,
    );
    assert!(
        !html.contains("<!--<script>"),
        "no comment-and-script sequence reaches the parser"
    );
    assert_eq!(data_of(&html)["violations"][0]["message"], "<!--<script>");
}

/// The page opens on the violation `marlow run` prints first (the first
/// safety one), whatever order the checkers reported them in.
#[test]
fn the_headline_violation_comes_first() {
    let mut report = double_spend();
    let mut liveness = report.violations[0].clone();
    liveness.invariant = Invariant::L4;
    report.violations.insert(0, liveness);
    let html = render(
        &facts(&report),
        report.history.entries(),
        &report.violations,
    );
    assert_eq!(data_of(&html)["violations"][0]["code"], "S1");
}

/// A history cut to its last entries still labels balances from the whole
/// run: the entries before the window are learnt, not forgotten.
#[test]
fn a_cut_window_keeps_the_balances_of_the_whole_run() {
    let report = double_spend();
    let entries = report.history.entries();
    let whole = render(&facts(&report), entries, &report.violations);
    let whole_items = data_of(&whole)["items"].as_array().expect("items").clone();
    let mut learnt = Lanes::default();
    let cut = entries.len() / 2;
    for entry in &entries[..cut] {
        learnt.learn(entry);
    }
    let last_event = entries[cut..]
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.step,
                Step::Committed {
                    record: CommittedRecord::Event(_),
                    ..
                }
            )
        })
        .expect("an event after the cut");
    let mut checked = false;
    for entry in &entries[cut..] {
        let item = learnt.place(entry);
        if entry.seq == last_event.seq {
            let item = item.expect("an event is drawn");
            let drawn = whole_items
                .iter()
                .find(|whole_item| whole_item["seq"] == entry.seq)
                .expect("drawn in the whole page");
            assert_eq!(drawn["label"], item.label.as_str());
            checked = true;
        }
    }
    assert!(checked);
}
