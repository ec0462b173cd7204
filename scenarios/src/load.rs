//! Loading: from a string, from a path, from the shipped set (embedded with
//! `include_str!` so the binary works from any directory), and `resolve`, which
//! takes whatever a user typed on the command line.

use crate::error::ScenarioError;
use crate::locate::toml_error;
use crate::Scenario;
use std::path::Path;

/// The shipped scenarios, by name, with their file text.
const SHIPPED: [(&str, &str); 13] = [
    ("baseline", include_str!("../files/baseline.toml")),
    ("chaos", include_str!("../files/chaos.toml")),
    ("at-least-once", include_str!("../files/at-least-once.toml")),
    ("edges", include_str!("../files/edges.toml")),
    ("w1-livelock", include_str!("../files/w1-livelock.toml")),
    (
        "w2-first-event",
        include_str!("../files/w2-first-event.toml"),
    ),
    (
        "w3-check-then-act",
        include_str!("../files/w3-check-then-act.toml"),
    ),
    (
        "w4-resubmission",
        include_str!("../files/w4-resubmission.toml"),
    ),
    (
        "w5-retry-storm",
        include_str!("../files/w5-retry-storm.toml"),
    ),
    ("w6-retention", include_str!("../files/w6-retention.toml")),
    ("w7-bad-input", include_str!("../files/w7-bad-input.toml")),
    ("w8-alarms", include_str!("../files/w8-alarms.toml")),
    ("hunt", include_str!("../files/hunt.toml")),
];

/// The names of the shipped scenarios, in listing order.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

/// The shipped scenarios as `(name, description)`, for `marlow list`. A shipped
/// file that does not load (which a test rules out) is listed with its error
/// instead of a description rather than panicking.
pub fn shipped() -> Vec<(&'static str, String)> {
    SHIPPED
        .iter()
        .map(|(name, _)| match Scenario::load_named(name) {
            Ok(scenario) => (*name, scenario.description),
            Err(error) => (*name, format!("(does not load: {error})")),
        })
        .collect()
}

/// The TOML text of a shipped scenario.
pub fn shipped_text(name: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Where a shipped file lives in the repository, used as its origin in errors.
fn shipped_origin(name: &str) -> String {
    format!("scenarios/files/{name}.toml")
}

impl Scenario {
    /// Parses and validates a scenario. `origin` names the source in errors
    /// (a path, or `scenarios/files/NAME.toml` for a shipped one).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let problems = crate::shape::table_shape_problems(text);
        if !problems.is_empty() {
            return Err(ScenarioError::Invalid {
                origin: origin.to_string(),
                problems,
            });
        }
        let scenario: Scenario =
            toml::from_str(text).map_err(|error| toml_error(origin, text, &error))?;
        scenario
            .validate()
            .map_err(|problems| ScenarioError::Invalid {
                origin: origin.to_string(),
                problems,
            })?;
        Ok(scenario)
    }

    /// The scenario as a TOML file that `from_toml_str` reads back equal
    /// (`marlow shrink` writes its result this way). Fails only on a value
    /// TOML cannot hold, such as an integer above `i64::MAX`.
    pub fn to_toml_string(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|error| error.to_string())
    }

    /// Reads, parses and validates a scenario file.
    pub fn load_path(path: &Path) -> Result<Scenario, ScenarioError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            origin: origin.clone(),
            source,
        })?;
        Scenario::from_toml_str(&text, &origin)
    }

    /// Loads a shipped scenario by name.
    pub fn load_named(name: &str) -> Result<Scenario, ScenarioError> {
        match shipped_text(name) {
            Some(text) => Scenario::from_toml_str(text, &shipped_origin(name)),
            None => Err(unknown(name)),
        }
    }

    /// A shipped name, or else a path to a scenario file. Something that looks
    /// like a path (has a `/`, ends in `.toml`, or exists) is read as one.
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if shipped_text(name_or_path).is_some() {
            return Scenario::load_named(name_or_path);
        }
        let path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains('/')
            || name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.ends_with(".toml")
            || path.is_file();
        if looks_like_path {
            Scenario::load_path(path)
        } else {
            Err(unknown(name_or_path))
        }
    }
}

fn unknown(name: &str) -> ScenarioError {
    let known = shipped_names();
    let suggestion = known
        .iter()
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, known)| known.to_string())
        .or_else(|| {
            // `w3` for `w3-check-then-act`.
            let prefixed: Vec<_> = known
                .iter()
                .filter(|k| !name.is_empty() && k.starts_with(name))
                .collect();
            (prefixed.len() == 1).then(|| prefixed[0].to_string())
        });
    ScenarioError::Unknown {
        name: name.to_string(),
        known: known.iter().map(|k| k.to_string()).collect(),
        suggestion,
    }
}

/// Levenshtein distance over chars; names are short, so O(n·m) is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("chaos", "chaos"), 0);
        assert_eq!(edit_distance("choas", "chaos"), 2);
        assert_eq!(edit_distance("baseline", "basline"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
