//! `--kafka-config FILE.properties`: the Java-style properties file Kafka tools take
//! (`key=value` lines, `#` or `!` comments, blank lines), read into librdkafka settings.
//! Only the subset librdkafka configs need: no line continuations and no escapes, so a
//! line that would need them is refused with its line number rather than misread.

use std::path::Path;

/// A properties file could not be read or has a line that is not `key=value`.
#[derive(Debug, PartialEq, Eq)]
pub struct PropertiesError {
    pub path: String,
    /// 1-based; 0 when the file itself could not be read.
    pub line: usize,
    pub problem: String,
}

impl std::fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.path, self.problem),
            line => write!(f, "{}:{line}: {}", self.path, self.problem),
        }
    }
}

/// Reads `path` into settings in file order (a later line for the same key wins when the
/// settings are applied in order, as in Java).
pub fn read_properties(path: &Path) -> Result<Vec<(String, String)>, PropertiesError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| PropertiesError {
        path: shown.clone(),
        line: 0,
        problem: format!("cannot read the Kafka config file: {error}"),
    })?;
    parse_properties(&text).map_err(|(line, problem)| PropertiesError {
        path: shown,
        line,
        problem,
    })
}

/// Parses properties text; on error, the 1-based line number and the problem.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut settings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        if line.ends_with('\\') {
            return Err((
                number,
                "line continuations (a trailing \\) are not supported".into(),
            ));
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((number, format!("expected key=value, got {line:?}")));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err((number, format!("empty key in {line:?}")));
        }
        if key.contains(char::is_whitespace) {
            return Err((number, format!("a key has no spaces: {key:?}")));
        }
        settings.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_gives_its_settings_in_order() {
        let text = "bootstrap.servers = host:9092\n\
                    sasl.jaas.config=a=b \n\
                    \n\
                    acks=\n\
                    \tclient.id=marlow\n";
        let settings = parse_properties(text).expect("valid");
        let pairs: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("bootstrap.servers", "host:9092"),
                ("sasl.jaas.config", "a=b"),
                ("acks", ""),
                ("client.id", "marlow"),
            ]
        );
    }

    #[test]
    fn comment_and_blank_lines_are_skipped() {
        let text = "# a comment\n! another = comment\n   \n  # indented=comment\nx=1\n";
        assert_eq!(parse_properties(text), Ok(vec![("x".into(), "1".into())]));
        assert_eq!(parse_properties(""), Ok(Vec::new()));
    }

    #[test]
    fn a_bad_line_is_refused_with_its_number() {
        let bad = |text: &str| parse_properties(text).map_err(|(line, _)| line);
        assert_eq!(bad("a=1\nnot a setting\n"), Err(2));
        assert_eq!(bad("a=1\n\n=value\n"), Err(3));
        assert_eq!(bad("my key=1\n"), Err(1));
        assert_eq!(bad("a=1 \\\n  2\n"), Err(1));
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let error =
            read_properties(Path::new("/nonexistent/marlow.properties")).expect_err("missing file");
        assert_eq!(error.line, 0);
        assert!(error
            .to_string()
            .starts_with("/nonexistent/marlow.properties: cannot read"));
    }
}
