//! The documentation's examples are real: every JSON line in docs/history.md
//! parses as a history entry, and every shipped scenario named in README.md
//! exists.

use marlow_sim::history::HistoryEntry;

#[test]
fn history_doc_examples_parse() {
    let doc = include_str!("../docs/history.md");
    let mut in_json = false;
    let mut parsed = 0;
    for line in doc.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            text if in_json && !text.is_empty() => {
                let entry: HistoryEntry = serde_json::from_str(text).unwrap_or_else(|error| {
                    panic!("docs/history.md example does not parse: {error}\n{text}")
                });
                assert!(entry.at_us < 1_000_000_000);
                parsed += 1;
            }
            _ => {}
        }
    }
    assert!(parsed >= 2, "docs/history.md should show example lines");
}

#[test]
fn readme_names_only_shipped_scenarios() {
    let readme = include_str!("../README.md");
    let names = marlow_scenarios::shipped_names();
    for word in readme.split_whitespace() {
        if let Some(rest) = word.strip_prefix("w") {
            // A `.toml` word is a file (such as the one `marlow shrink` writes).
            let file = word.ends_with(".toml");
            if rest.starts_with(|c: char| c.is_ascii_digit()) && word.contains('-') && !file {
                assert!(
                    names.contains(&word),
                    "README names unknown scenario {word}"
                );
            }
        }
    }
    assert!(readme.contains("run baseline"));
}
