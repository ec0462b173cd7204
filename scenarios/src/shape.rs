//! Tables must be tables. serde's derived structs accept a sequence as well as
//! a map, so `cluster = [5]` would silently set the section's first field, and
//! `think_time_us = [1, 2]` a range's bounds. Before the typed parse, every
//! key where a scenario has a table (a section, a range, a mix) is checked to
//! hold a table, and refused by its field path otherwise.

use crate::error::Problem;
use crate::load::{shipped_names, shipped_text};
use crate::Scenario;
use std::sync::OnceLock;
use toml::{Table, Value};

/// How deep the comparison goes: scenarios nest a few tables at most.
const MAX_DEPTH: usize = 8;

/// The keys that hold tables, as the shipped scenarios show once parsed and
/// written back (so every section and range, defaults included).
fn reference() -> &'static Table {
    static REFERENCE: OnceLock<Table> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let mut reference = Table::new();
        for name in shipped_names() {
            let text = shipped_text(name).expect("a shipped name has a text");
            let typed = toml::from_str::<Scenario>(text)
                .ok()
                .and_then(|scenario| Table::try_from(&scenario).ok());
            let raw = text.parse::<Table>().ok();
            for table in [typed, raw].into_iter().flatten() {
                merge_tables(&mut reference, &table, 0);
            }
        }
        reference
    })
}

fn merge_tables(into: &mut Table, from: &Table, depth: usize) {
    assert!(
        depth <= MAX_DEPTH,
        "scenario tables nest at most {MAX_DEPTH} deep"
    );
    for (key, value) in from {
        let Value::Table(from_table) = value else {
            continue;
        };
        let entry = into
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(into_table) = entry {
            merge_tables(into_table, from_table, depth + 1);
        }
    }
}

/// Every key of `text` that holds something other than a table where a
/// scenario has one. A file that does not parse as TOML has no problems here:
/// the typed parse reports its syntax error with line and column.
pub fn table_shape_problems(text: &str) -> Vec<Problem> {
    let Ok(user) = text.parse::<Table>() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    compare(&user, reference(), "", 0, &mut problems);
    problems
}

fn compare(user: &Table, reference: &Table, path: &str, depth: usize, problems: &mut Vec<Problem>) {
    if depth > MAX_DEPTH {
        return;
    }
    for (key, value) in user {
        let Some(Value::Table(expected)) = reference.get(key) else {
            continue;
        };
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Table(table) => compare(table, expected, &field, depth + 1, problems),
            other => problems.push(Problem {
                field: field.clone(),
                expected: format!("a table (`[{field}]`, or `{key} = {{ ... }}` inline)"),
                found: format!("{} `{other}`", kind(other)),
            }),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_where_tables_belong_are_refused_by_field() {
        let text = "name = \"x\"\ncluster = [5]\n[workload]\nthink_time_us = [1, 2]\n";
        let problems = table_shape_problems(text);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, vec!["cluster", "workload.think_time_us"]);
        assert!(problems[0].found.contains("an array"), "{}", problems[0]);
    }

    #[test]
    fn every_shipped_scenario_has_the_right_shapes() {
        for name in shipped_names() {
            let text = shipped_text(name).expect("shipped");
            assert_eq!(table_shape_problems(text), Vec::new(), "{name}");
        }
        assert!(reference().contains_key("cluster") && reference().contains_key("phases"));
    }
}
