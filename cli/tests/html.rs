//! `marlow repro --html FILE` as a user runs it: the page is written next to
//! the usual verdict, names the violation, and (when Chromium is installed)
//! renders in a headless browser: its script runs, draws the shapes and the
//! violation's panel. Without Chromium the browser half says it skipped.

mod runner;

use runner::marlow;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("marlow-html-{}-{name}", std::process::id()))
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| Path::new(path).exists())
}

/// The DOM after the page's script ran, as headless Chromium prints it.
fn rendered_dom(browser: &str, page: &Path) -> String {
    let profile = scratch("profile");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `marlow repro` of a failing W3 seed, with its page written to `path`.
fn repro_html(path: &str) -> runner::Ran {
    marlow(&["repro", "w3-check-then-act", "--seed", "0", "--html", path])
}

#[test]
fn repro_writes_a_page_that_a_browser_renders_with_the_violation() {
    let page = scratch("w3.html");
    let page_arg = page.display().to_string();
    let ran = repro_html(&page_arg);
    assert_eq!(ran.code, 3, "the verdict is the run's");
    assert!(
        ran.stderr.contains("timeline: written to"),
        "{}",
        ran.stderr
    );
    let html = std::fs::read_to_string(&page).expect("the page was written");
    // The headline the summary printed is in the page's data, with its account.
    let headline = ran
        .stdout
        .lines()
        .find(|line| line.contains(" violated: "))
        .expect("a violation is printed");
    let code = &headline[..2];
    assert!(html.contains(&format!("\"code\":\"{code}\"")), "{code}");
    let account = ran
        .stdout
        .lines()
        .find_map(|line| line.split(", account ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .expect("the violation names its account")
        .trim()
        .to_string();
    assert!(
        html.contains(&format!("\"account\":{account}")),
        "account {account}"
    );
    let Some(browser) = chromium() else {
        println!("skipped the browser half: Chromium is not installed (apt-get install chromium)");
        let _ = std::fs::remove_file(&page);
        return;
    };
    let dom = rendered_dom(browser, &page);
    let _ = std::fs::remove_file(&page);
    let drawn: usize = dom
        .split("data-rendered=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the script did not run to its end:\n{}",
                &dom[..dom.len().min(2000)]
            )
        });
    assert!(drawn > 0, "shapes drawn");
    assert!(
        dom.contains(&format!("{code} ")) && dom.contains("violated at t="),
        "the panel"
    );
    assert!(
        dom.contains("class=\"violating\""),
        "the violating entry is ringed"
    );
}

#[test]
fn an_unwritable_html_path_is_refused_before_the_run() {
    let ran = repro_html("/nonexistent/dir/t.html");
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--html") && ran.stderr.contains("/nonexistent/dir/t.html"));
    assert!(ran.stdout.is_empty(), "nothing ran: {}", ran.stdout);
}
