//! `resolve`: a shipped name, or a path to a scenario file, or an error that
//! lists the known names (and suggests the closest).

use marlow_scenarios::{shipped_names, shipped_text, Scenario, ScenarioError};
use std::path::PathBuf;

/// A scratch file under the system temp dir, unique to this process and test.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("marlow-scenarios-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn resolve_finds_every_shipped_name() {
    for name in shipped_names() {
        let scenario = Scenario::resolve(name).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(scenario.name, name);
    }
}

#[test]
fn resolve_reads_a_path() {
    let text = shipped_text("w8-alarms")
        .expect("shipped")
        .replace("name = \"w8-alarms\"", "name = \"my-copy\"");
    let file = TempFile::new("resolve-path.toml", &text);
    let scenario =
        Scenario::resolve(file.0.to_str().expect("utf-8 path")).expect("loads from a path");
    assert_eq!(scenario.name, "my-copy");
    assert_eq!(
        scenario.workload,
        Scenario::load_named("w8-alarms").expect("shipped").workload
    );
}

#[test]
fn a_bad_file_on_a_path_names_the_path_and_field() {
    let file = TempFile::new(
        "resolve-bad.toml",
        "name = \"x\"\ndescription = \"d\"\n[cluster]\npartitions = 0\n",
    );
    let path = file.0.to_str().expect("utf-8 path").to_string();
    let error = Scenario::resolve(&path).expect_err("invalid");
    assert_eq!(
        error.to_string(),
        format!("{path}: cluster.partitions: expected an integer from 1 to 1024, found 0")
    );
}

#[test]
fn a_missing_path_is_a_read_error_naming_it() {
    let error = Scenario::resolve("no/such/dir/scenario.toml").expect_err("missing");
    assert!(matches!(error, ScenarioError::Read { .. }));
    assert!(error
        .to_string()
        .starts_with("no/such/dir/scenario.toml: cannot read the scenario file"));
}

#[test]
fn an_unknown_name_lists_the_known_ones_and_suggests_the_closest() {
    let error = Scenario::resolve("chaoss").expect_err("unknown");
    let ScenarioError::Unknown {
        known, suggestion, ..
    } = &error
    else {
        panic!("unknown: {error}");
    };
    assert_eq!(known.len(), shipped_names().len());
    assert_eq!(suggestion.as_deref(), Some("chaos"));
    let text = error.to_string();
    for name in shipped_names() {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("a path to a .toml file"));
    let error = Scenario::resolve("w5").expect_err("unknown");
    assert!(
        error.to_string().contains("did you mean `w5-retry-storm`?"),
        "{error}"
    );
    let error = Scenario::resolve("something-else-entirely").expect_err("unknown");
    assert!(
        matches!(
            error,
            ScenarioError::Unknown {
                suggestion: None,
                ..
            }
        ),
        "{error}"
    );
    assert!(Scenario::load_named("nope").is_err());
}
