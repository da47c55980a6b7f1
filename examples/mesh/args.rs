//! The mesh example's command line.

/// How long the traffic runs unless `--seconds` says otherwise: with SVIDs rotated every
/// 15 seconds, long enough for every workload to rotate twice while requests flow.
pub(crate) const DEFAULT_SECONDS: u64 = 35;

/// What `--help` prints.
pub(crate) const USAGE: &str = "usage: mesh [--self-check] [--seconds N]
  (no option)    start edge, orders and payments on 127.0.0.1 with 30-second DEMO SVIDs
                 rotated at half-life, send users' requests and an intruder's for 35 seconds,
                 print what happens and a summary
  --self-check   the same, then exit 1 unless every legitimate request succeeded, every
                 service rotated at least twice, the intruder and the user without the
                 buyer role were refused every time and no expired certificate was presented
  --seconds N    run the traffic for N seconds (1 to 3600; the self-check needs 31 or more
                 for two rotations)
  -h, --help     print this text
";

/// What the example was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run the traffic for this many seconds and print a summary.
    Run(u64),
    /// Run the traffic for this many seconds and judge it.
    SelfCheck(u64),
    Help,
}

/// The mode `args` (without the program name) ask for, or why they were not understood.
pub(crate) fn mode(args: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let mut self_check = false;
    let mut seconds = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Mode::Help),
            "--self-check" if !self_check => self_check = true,
            "--seconds" if seconds.is_none() => {
                let value = args.next().unwrap_or_default();
                match value.parse::<u64>() {
                    Ok(n @ 1..=3600) => seconds = Some(n),
                    _ => return Err(format!("--seconds takes 1 to 3600, not `{value}`")),
                }
            }
            _ => return Err(format!("unknown or repeated argument `{arg}`")),
        }
    }
    let seconds = seconds.unwrap_or(DEFAULT_SECONDS);
    Ok(if self_check {
        Mode::SelfCheck(seconds)
    } else {
        Mode::Run(seconds)
    })
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_SECONDS, Mode, USAGE, mode};

    fn mode_of(args: &[&str]) -> Result<Mode, String> {
        mode(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn help_is_answered_with_the_usage() {
        assert_eq!(mode_of(&["--help"]), Ok(Mode::Help));
        assert_eq!(mode_of(&["--self-check", "-h"]), Ok(Mode::Help));
        assert!(USAGE.starts_with("usage: mesh") && USAGE.contains("--self-check"));
    }

    #[test]
    fn modes_and_durations() {
        assert_eq!(mode_of(&[]), Ok(Mode::Run(DEFAULT_SECONDS)));
        assert_eq!(
            mode_of(&["--self-check"]),
            Ok(Mode::SelfCheck(DEFAULT_SECONDS))
        );
        assert_eq!(
            mode_of(&["--seconds", "90", "--self-check"]),
            Ok(Mode::SelfCheck(90))
        );
        assert_eq!(mode_of(&["--seconds", "5"]), Ok(Mode::Run(5)));
    }

    #[test]
    fn unknown_repeated_and_out_of_range_arguments_are_refused() {
        for args in [
            &["--verbose"][..],
            &["--self-check", "--self-check"],
            &["--seconds"],
            &["--seconds", "0"],
            &["--seconds", "3601"],
            &["--seconds", "ten"],
            &["--seconds", "5", "--seconds", "6"],
        ] {
            assert!(mode_of(args).is_err(), "{args:?} was accepted");
        }
    }
}
