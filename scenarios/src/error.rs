//! The one error type of scenario loading. Every variant names the file (or the
//! name that was asked for); parse and validation errors also name the field path,
//! so a user can fix a bad file without reading this crate. The CLI maps any of
//! them to exit code 2.

use std::fmt;

/// One thing wrong with a scenario that parsed but did not validate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted field path, e.g. `workload.think_time_us.max` or
    /// `faults.timeline[2].instance`.
    pub field: String,
    /// What a valid value looks like, e.g. `an integer from 1 to 1024`.
    pub expected: String,
    /// What the file has instead.
    pub found: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.field, self.expected, self.found
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read at all.
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse, or did not match the schema (unknown field, wrong
    /// type, missing field). `field` is empty when the error is not inside any
    /// key (a syntax error before the first key, a missing top-level field).
    Toml {
        origin: String,
        field: String,
        /// 1-based line and column of the offending text, as the toml crate found it.
        line: usize,
        column: usize,
        message: String,
        /// The offending source line with a caret under the offending text.
        snippet: String,
    },
    /// The scenario parsed but breaks a range or a relation between fields.
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    /// `resolve` got something that is neither a shipped name nor a path.
    Unknown {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
}

impl ScenarioError {
    /// The field paths this error names (empty for `Read` and `Unknown`).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            ScenarioError::Toml { field, .. } if !field.is_empty() => vec![field.as_str()],
            ScenarioError::Invalid { problems, .. } => {
                problems.iter().map(|p| p.field.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Read { origin, source } => {
                write!(f, "{origin}: cannot read the scenario file: {source}")
            }
            ScenarioError::Toml {
                origin,
                field,
                line,
                column,
                message,
                snippet,
            } => {
                write!(f, "{origin}:{line}:{column}: ")?;
                if !field.is_empty() {
                    write!(f, "{field}: ")?;
                }
                write!(f, "{message}")?;
                if !snippet.is_empty() {
                    write!(f, "\n{snippet}")?;
                }
                Ok(())
            }
            ScenarioError::Invalid { origin, problems } => match problems.as_slice() {
                [one] => write!(f, "{origin}: {one}"),
                many => {
                    write!(f, "{origin}: {} problems", many.len())?;
                    for problem in many {
                        write!(f, "\n  {problem}")?;
                    }
                    Ok(())
                }
            },
            ScenarioError::Unknown {
                name,
                known,
                suggestion,
            } => {
                write!(f, "unknown scenario `{name}`")?;
                if let Some(suggestion) = suggestion {
                    write!(f, " (did you mean `{suggestion}`?)")?;
                }
                write!(
                    f,
                    ": give a shipped scenario name ({}) or a path to a .toml file",
                    known.join(", ")
                )
            }
        }
    }
}
