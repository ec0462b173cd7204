//! Runs the `marlow` binary for the CLI tests and keeps what it printed.

use std::process::Command;

/// What one `marlow` invocation printed and how it exited.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `marlow ARGS`, echoing the command and its output for a failing test.
pub fn marlow(args: &[&str]) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_marlow"))
        .args(args)
        .output()
        .expect("marlow runs");
    let ran = Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!(
        "$ marlow {}\n{}{}-> exit {}",
        args.join(" "),
        ran.stdout,
        ran.stderr,
        ran.code
    );
    ran
}

/// The command on the line after "reproduce with:" in `stdout`.
#[allow(dead_code)] // each test binary compiles this module; not all print repro lines
pub fn repro_line_in(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("reproduce with:"))
        .nth(1)
        .expect("a repro line follows")
        .trim()
        .to_string()
}
