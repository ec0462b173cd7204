//! `marlow merge`: joins the `sweep --format json` outputs of the shards of a
//! campaign (or of overlapping sweeps) into one table, in seed order. A seed
//! found twice with different results is a determinism violation (exit 5):
//! one build must give one result per (scenario, seed).

use crate::commands::{EXIT_DETERMINISM, EXIT_USAGE};
use crate::report::SweepTable;
use crate::seed_line::SeedLine;
use crate::sweep::Format;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::time::Duration;

/// Lines longer than this are refused rather than read into memory.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Args)]
pub struct MergeArgs {
    /// Files of seed lines written by `marlow sweep --format json` (`-` reads stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output: `text` (the table) or `json` (the merged lines, in seed order).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Why a merge stopped, with the exit code it ends with.
struct MergeError {
    message: String,
    code: i32,
}

fn usage(message: String) -> MergeError {
    MergeError {
        message,
        code: EXIT_USAGE,
    }
}

pub fn merge(args: MergeArgs) -> i32 {
    let lines = match read_all(&args.files) {
        Ok(lines) => lines,
        Err(error) => {
            eprintln!("error: {}", error.message);
            return error.code;
        }
    };
    let Some(first) = lines.values().next() else {
        eprintln!("error: the files hold no seed line");
        return EXIT_USAGE;
    };
    let mut table = SweepTable::new(&first.required_marks);
    let mut wall_ms = 0u64;
    for line in lines.values() {
        table.add(line);
        wall_ms = wall_ms.saturating_add(line.wall_ms);
    }
    let mut stdout = std::io::stdout();
    match args.format {
        Format::Json => {
            for line in lines.values() {
                let _ = writeln!(stdout, "{}", line.to_json());
            }
        }
        Format::Text => {
            // The runs' own wall times, summed: the shards ran apart.
            let wall = Duration::from_millis(wall_ms);
            table.print(&mut stdout, &first.scenario, &first.design, None, wall);
        }
    }
    table.exit_code()
}

/// Every seed line of every file, by seed; checks that they are of one
/// scenario and design, and that a seed seen twice has one result.
fn read_all(files: &[PathBuf]) -> Result<BTreeMap<u64, SeedLine>, MergeError> {
    let mut lines: BTreeMap<u64, (SeedLine, String)> = BTreeMap::new();
    for path in files {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead> = if name == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            let file = std::fs::File::open(path)
                .map_err(|error| usage(format!("cannot read {name}: {error}")))?;
            Box::new(BufReader::new(file))
        };
        for (index, text) in reader.lines().enumerate() {
            let at = format!("{name}:{}", index + 1);
            let text = text.map_err(|error| usage(format!("{at}: {error}")))?;
            if text.trim().is_empty() {
                continue;
            }
            if text.len() > MAX_LINE_BYTES {
                return Err(usage(format!(
                    "{at}: a line of {} bytes is not a seed line",
                    text.len()
                )));
            }
            let line: SeedLine = serde_json::from_str(&text).map_err(|error| {
                usage(format!(
                    "{at}: not a seed line of `marlow sweep --format json`: {error}"
                ))
            })?;
            add_line(&mut lines, line, at)?;
        }
    }
    Ok(lines
        .into_iter()
        .map(|(seed, (line, _))| (seed, line))
        .collect())
}

fn add_line(
    lines: &mut BTreeMap<u64, (SeedLine, String)>,
    line: SeedLine,
    at: String,
) -> Result<(), MergeError> {
    if let Some((other, other_at)) = lines.values().next() {
        if (&other.scenario, &other.design) != (&line.scenario, &line.design) {
            return Err(usage(format!(
                "{at} is scenario {} design {}, but {other_at} is scenario {} design {}: merge one sweep's shards at a time",
                line.scenario, line.design, other.scenario, other.design
            )));
        }
    }
    match lines.get(&line.seed) {
        None => {
            lines.insert(line.seed, (line, at));
            Ok(())
        }
        Some((seen, seen_at)) => {
            let same = SeedLine {
                wall_ms: seen.wall_ms,
                repro: seen.repro.clone(),
                ..line.clone()
            };
            if same == *seen {
                return Ok(()); // Overlapping sweeps: the same result twice.
            }
            Err(MergeError {
                message: format!(
                    "determinism violation: seed {} has two results: {seen_at} says {} (trace hash {}), {at} says {} (trace hash {})",
                    line.seed,
                    seen.verdict,
                    seen.trace_hash.as_deref().unwrap_or("none"),
                    line.verdict,
                    line.trace_hash.as_deref().unwrap_or("none"),
                ),
                code: EXIT_DETERMINISM,
            })
        }
    }
}
