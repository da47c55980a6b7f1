//! The quickstart's command line.

/// What `--help` prints.
pub(crate) const USAGE: &str = "usage: quickstart [--self-check]
  (no option)    serve the documents service on 127.0.0.1:3000 (or another free port),
                 print curl commands with fresh DEMO tokens, stop on Ctrl-C
  --self-check   send the requests itself, print one line per answer, exit 1 if any differs
  -h, --help     print this text
";

/// What the quickstart was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Serve,
    SelfCheck,
    Help,
}

/// The mode `args` (without the program name) ask for, or the arguments not understood.
pub(crate) fn mode(args: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let args: Vec<String> = args.into_iter().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => Ok(Mode::Serve),
        ["--self-check"] => Ok(Mode::SelfCheck),
        ["--help" | "-h"] => Ok(Mode::Help),
        _ => Err(format!("unknown arguments {args:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Mode, USAGE, mode};

    fn mode_of(args: &[&str]) -> Result<Mode, String> {
        mode(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn help_is_answered_with_the_usage() {
        assert_eq!(mode_of(&["--help"]), Ok(Mode::Help));
        assert_eq!(mode_of(&["-h"]), Ok(Mode::Help));
        assert!(USAGE.starts_with("usage: quickstart") && USAGE.contains("--self-check"));
    }

    #[test]
    fn modes_and_unknown_arguments() {
        assert_eq!(mode_of(&[]), Ok(Mode::Serve));
        assert_eq!(mode_of(&["--self-check"]), Ok(Mode::SelfCheck));
        assert!(mode_of(&["--self-check", "--help"]).is_err());
        assert!(mode_of(&["--verbose"]).is_err());
    }
}
