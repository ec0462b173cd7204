//! `--plot FILE.svg` for `real` and `soak`: one self-contained SVG of the client answers
//! per second over the run, a red line at each fault with a shaded band up to the first
//! answer after it (its recovery), and the heal. Opens in any browser.

use std::fmt::Write as _;

use marlow_harness::recovery::RecoveryReport;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;
/// Bound on the faults drawn (their lines would merge anyway).
const MAX_FAULTS_DRAWN: usize = 2_000;

/// The SVG text of `report`, titled `title`.
pub fn render(report: &RecoveryReport, title: &str) -> String {
    let per_second = report.answers_per_second();
    let seconds = per_second.len().max(1) as f64;
    let peak = per_second.iter().copied().max().unwrap_or(0).max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |second: f64| LEFT + plot_w * second / seconds;
    let y = |answers: f64| TOP + plot_h * (1.0 - answers / peak);
    let at_second = |us: u64| us.saturating_sub(report.first_at_us) as f64 / 1e6;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="{LEFT}" y="20" font-size="14">{}</text>"##,
        escape(title)
    );
    for fault in report.faults.iter().take(MAX_FAULTS_DRAWN) {
        let start = x(at_second(fault.at_us));
        let end = match fault.recovery_us {
            Some(us) => x(at_second(fault.at_us + us)),
            None => x(seconds),
        };
        let _ = write!(
            svg,
            r##"<rect x="{start:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#f4b4b4" opacity="0.5"><title>{}</title></rect><line x1="{start:.1}" x2="{start:.1}" y1="{TOP}" y2="{}" stroke="#c00"/>"##,
            (end - start).max(1.0),
            escape(&fault_title(fault)),
            TOP + plot_h
        );
    }
    if let Some(heal) = report.heal_at_us {
        let hx = x(at_second(heal));
        let _ = write!(
            svg,
            r##"<line x1="{hx:.1}" x2="{hx:.1}" y1="{TOP}" y2="{}" stroke="#070" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#070" text-anchor="end">heal</text>"##,
            TOP + plot_h,
            hx - 3.0,
            TOP + 12.0
        );
    }
    let points: Vec<String> = per_second
        .iter()
        .enumerate()
        .map(|(second, n)| format!("{:.1},{:.1}", x(second as f64 + 0.5), y(*n as f64)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="{}"/>"##,
        points.join(" ")
    );
    // Axes, with the peak and the duration.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{b}" stroke="#333"/><line x1="{LEFT}" x2="{r}" y1="{b}" y2="{b}" stroke="#333"/><text x="{l}" y="{t}" text-anchor="end">{peak}</text><text x="{l}" y="{b}" text-anchor="end">0</text><text x="{r}" y="{lb}" text-anchor="end">{seconds} s</text><text x="{LEFT}" y="{lb}">answers per second (blue); faults (red) shaded until the first answer after each</text>"##,
        b = TOP + plot_h,
        r = LEFT + plot_w,
        l = LEFT - 6.0,
        t = TOP + 4.0,
        lb = HEIGHT - 12.0,
    );
    // Five ticks on the time axis, in seconds since the run began.
    for tick in 1..5 {
        let second = seconds * f64::from(tick) / 5.0;
        let _ = write!(
            svg,
            r##"<line x1="{tx:.1}" x2="{tx:.1}" y1="{b}" y2="{b2}" stroke="#333"/><text x="{tx:.1}" y="{ty}" text-anchor="middle">{second:.0} s</text>"##,
            tx = x(second),
            b = TOP + plot_h,
            b2 = TOP + plot_h + 4.0,
            ty = TOP + plot_h + 16.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn fault_title(fault: &marlow_harness::recovery::FaultRecovery) -> String {
    match fault.recovery_us {
        Some(us) => format!("{}: recovered in {} ms", fault.fault, us / 1000),
        None => format!("{}: no answer after it", fault.fault),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The summary lines: recovery times and throughput around the faults.
pub fn summary_lines(report: &RecoveryReport) -> Vec<String> {
    let Some((min, median, max)) = report.recovery_summary_us() else {
        return Vec::new();
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let mut lines = vec![format!(
        "recovery      {} faults; fault to first answer after it: min {:.0} ms, median {:.0} ms, max {:.0} ms{}",
        report.faults.len() as u64 + report.faults_not_kept,
        ms(min),
        ms(median),
        ms(max),
        match report.faults.iter().filter(|f| f.recovery_us.is_none()).count() {
            0 => String::new(),
            n => format!(" ({n} never followed by an answer)"),
        }
    )];
    if let Some((before, during, after)) = report.phases() {
        lines.push(format!(
            "throughput    answers/s before the faults {:.1}, during them {:.1}, after the last recovery {:.1}",
            before.per_second(),
            during.per_second(),
            after.per_second()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_harness::check::testkit::Story;
    use marlow_harness::history::{History, Step};

    #[test]
    fn the_plot_draws_the_answers_and_a_band_per_fault_and_escapes_text() {
        let mut history = History::new();
        let mut story = Story::new();
        let open = story.open_command(0, 0, 0, 100);
        let outcome = Story::accepted(&open, 1);
        let answer = || Step::ClientOutcome {
            client: outcome.command.client,
            outcome: outcome.clone(),
        };
        history.push(0, answer());
        history.push(
            1_000_000,
            Step::Fault {
                fault: "crash <instance> 0".into(),
            },
        );
        history.push(2_500_000, answer());
        history.push(3_000_000, Step::Heal);
        let report = RecoveryReport::from_entries(history.entries());
        let svg = render(&report, "tiny & co");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("recovered in 1500 ms"), "{svg}");
        assert!(svg.contains("tiny &amp; co") && svg.contains("crash &lt;instance&gt; 0"));
        let lines = summary_lines(&report);
        assert!(
            lines[0].contains("1 faults") && lines[0].contains("median 1500 ms"),
            "{lines:?}"
        );
    }
}
