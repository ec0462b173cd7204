//! Turns a toml error into a `ScenarioError::Toml` that names the field. The
//! toml crate reports a byte span but keeps the key path private when it has a
//! span, so the path is found again by walking the spanned document to the key
//! whose key or value span is the narrowest to hold the error's span.

use crate::error::ScenarioError;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub(crate) fn toml_error(origin: &str, text: &str, error: &toml::de::Error) -> ScenarioError {
    let span = error.span().unwrap_or(0..0);
    let start = floor_boundary(text, span.start);
    let end = floor_boundary(text, span.end).max(start);
    let (document, _) = DeTable::parse_recoverable(text);
    let mut best = Best {
        width: usize::MAX,
        path: String::new(),
    };
    // The toml crate gives a missing top-level field the empty span 0..0,
    // which names no key and no line worth showing.
    let whole_document = span.is_empty() && span.start == 0;
    if !whole_document {
        walk_table(document.get_ref(), &(start..end), "", &mut best);
    }
    let path = best.path;
    let (line, column) = line_column(text, start);
    ScenarioError::Toml {
        origin: origin.to_string(),
        field: path,
        line,
        column,
        message: error.message().trim().to_string(),
        snippet: if whole_document {
            String::new()
        } else {
            snippet(text, start, end, line, column)
        },
    }
}

/// The largest char boundary at or below `at` (spans from the toml crate are
/// boundaries already; this keeps slicing panic-free whatever they are).
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Whether `outer` holds all of `inner` (an empty `inner` at a position counts
/// as held when the position is inside `outer`).
fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    if inner.is_empty() {
        outer.start <= inner.start && inner.start < outer.end.max(outer.start + 1)
    } else {
        outer.start <= inner.start && inner.end <= outer.end
    }
}

/// The best key path so far: the narrowest key or value span holding the
/// error, and among equals the deepest path.
struct Best {
    width: usize,
    path: String,
}

impl Best {
    fn offer(&mut self, span: Range<usize>, error: &Range<usize>, path: &str) {
        if !holds(&span, error) {
            return;
        }
        let width = span.end.saturating_sub(span.start);
        if width < self.width || (width == self.width && path.len() > self.path.len()) {
            self.width = width;
            self.path = path.to_string();
        }
    }
}

/// Visits every key: a header table's span covers only its header, not the
/// keys below it, so containment cannot prune the walk.
fn walk_table(table: &DeTable<'_>, error: &Range<usize>, prefix: &str, best: &mut Best) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        best.offer(key.span(), error, &path);
        walk_value(value, error, &path, best);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, error: &Range<usize>, path: &str, best: &mut Best) {
    best.offer(value.span(), error, path);
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, error, path, best),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk_value(item, error, &format!("{path}[{index}]"), best);
            }
        }
        _ => {}
    }
}

/// 1-based line and character column of a byte offset.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The offending line and a caret line under the span, indented by a gutter.
fn snippet(text: &str, start: usize, end: usize, line: usize, column: usize) -> String {
    let Some(source_line) = text.lines().nth(line - 1) else {
        return String::new();
    };
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let width = text
        .get(start..end.min(line_end).max(start))
        .map_or(1, |s| s.chars().count().max(1));
    let gutter = line.to_string().len();
    format!(
        "{:gutter$} |\n{line} | {source_line}\n{:gutter$} | {}{}",
        "",
        "",
        " ".repeat(column - 1),
        "^".repeat(width)
    )
}
