//! A linear pre-scan that bounds how deeply policies, schemas and JSON nest, run before
//! Cedar's parsers see the text.
//!
//! Cedar turns its syntax tree into expressions, checks, evaluates and drops them by
//! recursion, one or more stack frames per level, with no limit of its own before evaluation.
//! In a debug build about 36 nested brackets, about 380 nested `if`s or a chain of about
//! 8,000 operators overflow a 2 MiB thread stack (a tokio worker's), which aborts the whole
//! process rather than failing the load. This scan reads the text once, understands just
//! enough of Cedar's lexical structure (string literals with escapes, `//` comments, `::`
//! paths) not to count brackets that are not brackets, and refuses text past the bounds
//! below, which are set at about two thirds of what a 2 MiB stack survives in a debug build.
//!
//! In policy text, Cedar's grammar nests in exactly these ways, all counted here: brackets
//! (`(…)` groups and calls, `[…]` sets and indexing, `{…}` records and conditions) and
//! `if … then … else` (whose branches are expressions, so `else if` chains nest too). Chains
//! of binary operators, `.` accesses, `[…]` indexing, `(…)` calls, `has`/`like`/`is`/`in` and
//! unary `!`/`-` are flat in Cedar's concrete syntax but become left-deep expression trees,
//! so their length is bounded as an expression height. Runs of `!` or `-` longer than four
//! are refused by Cedar itself, and count as operators here before that.

/// Most brackets and `if`s open at once in policy text.
pub const MAX_POLICY_NESTING: usize = 24;

/// Greatest expression height in policy text: operators, `.` accesses and brackets along the
/// deepest path of an expression (an over-estimate: each operator of a chain counts once).
pub const MAX_EXPRESSION_HEIGHT: usize = 4096;

/// Most brackets open at once in a schema (Cedar syntax, where `Set<…>` counts, or JSON) and
/// in entities JSON.
pub const MAX_DATA_NESTING: usize = 64;

/// The kind of text being scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Cedar policies.
    Policy,
    /// Cedar schema syntax.
    Schema,
    /// JSON (schemas and entities).
    Json,
}

/// Where a text first went past a bound, and which bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) limit: usize,
}

/// Scans `text` once and refuses it at the first point where it nests past a bound.
pub(crate) fn check(text: &str, syntax: Syntax) -> Result<(), TooDeep> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        line_start: 0,
    };
    match syntax {
        Syntax::Policy => scanner.policy(),
        Syntax::Schema | Syntax::Json => scanner.data(syntax),
    }
}

/// One open bracket of policy text (or the whole text), with its expression so far.
#[derive(Debug, Default)]
struct Frame {
    /// `if`s opened in the current segment (they end with it).
    ifs: usize,
    /// Operators in the current segment.
    operators: usize,
    /// Height of the tallest bracket closed in the current segment.
    child: usize,
    /// Height of the tallest segment already ended by `,`, `:` or `;`.
    ended: usize,
}

impl Frame {
    fn segment_height(&self) -> usize {
        self.operators.saturating_add(self.child)
    }

    fn height(&self) -> usize {
        self.ended.max(self.segment_height())
    }

    fn end_segment(&mut self) -> usize {
        self.ended = self.height();
        self.operators = 0;
        self.child = 0;
        std::mem::take(&mut self.ifs)
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u32,
    line_start: usize,
}

impl Scanner<'_> {
    fn policy(&mut self) -> Result<(), TooDeep> {
        let mut frames = vec![Frame::default()];
        // Brackets open (frames beyond the first) plus `if`s open, kept as one running count.
        let mut ifs_open = 0usize;
        while let Some(byte) = self.peek(0) {
            let start = self.at;
            match byte {
                b'"' => self.string(),
                b'/' if self.peek(1) == Some(b'/') => self.comment(),
                b'(' | b'[' | b'{' => {
                    self.advance(1);
                    // After an operand, `[…]` and `(…)` are accesses and calls that chain
                    // like `.`; counting every bracket as an operator covers them.
                    self.operator(&mut frames, start)?;
                    frames.push(Frame::default());
                    self.bound(frames.len() - 1 + ifs_open, MAX_POLICY_NESTING, start)?;
                }
                b')' | b']' | b'}' => {
                    self.advance(1);
                    if frames.len() > 1
                        && let Some(closed) = frames.pop()
                    {
                        ifs_open = ifs_open.saturating_sub(closed.ifs);
                        let height = closed.height().saturating_add(1);
                        if let Some(parent) = frames.last_mut() {
                            parent.child = parent.child.max(height);
                            self.bound(parent.segment_height(), MAX_EXPRESSION_HEIGHT, start)?;
                        }
                    }
                }
                b',' | b';' => {
                    self.advance(1);
                    if let Some(frame) = frames.last_mut() {
                        ifs_open = ifs_open.saturating_sub(frame.end_segment());
                    }
                }
                b':' if self.peek(1) == Some(b':') => self.advance(2),
                b':' => {
                    self.advance(1);
                    if let Some(frame) = frames.last_mut() {
                        ifs_open = ifs_open.saturating_sub(frame.end_segment());
                    }
                }
                b'.' | b'=' | b'!' | b'<' | b'>' | b'|' | b'&' | b'+' | b'-' | b'*' | b'/'
                | b'%' => {
                    let pair = matches!(
                        (byte, self.peek(1)),
                        (b'=' | b'!' | b'<' | b'>', Some(b'='))
                            | (b'|', Some(b'|'))
                            | (b'&', Some(b'&'))
                    );
                    self.advance(if pair { 2 } else { 1 });
                    self.operator(&mut frames, start)?;
                }
                b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                    let word = self.word();
                    match word {
                        b"if" => {
                            ifs_open = ifs_open.saturating_add(1);
                            if let Some(frame) = frames.last_mut() {
                                frame.ifs = frame.ifs.saturating_add(1);
                            }
                            self.bound(frames.len() - 1 + ifs_open, MAX_POLICY_NESTING, start)?;
                            self.operator(&mut frames, start)?;
                        }
                        b"has" | b"like" | b"is" | b"in" => self.operator(&mut frames, start)?,
                        _ => {}
                    }
                }
                b'\n' => self.newline(1),
                _ => self.advance(1),
            }
        }
        Ok(())
    }

    /// Brackets only: Cedar schema syntax (with `Set<…>`) or JSON.
    fn data(&mut self, syntax: Syntax) -> Result<(), TooDeep> {
        let mut depth = 0usize;
        while let Some(byte) = self.peek(0) {
            let start = self.at;
            match byte {
                b'"' => self.string(),
                b'/' if syntax == Syntax::Schema && self.peek(1) == Some(b'/') => self.comment(),
                b'(' | b'<' if syntax == Syntax::Schema => {
                    self.advance(1);
                    depth = depth.saturating_add(1);
                    self.bound(depth, MAX_DATA_NESTING, start)?;
                }
                b'[' | b'{' => {
                    self.advance(1);
                    depth = depth.saturating_add(1);
                    self.bound(depth, MAX_DATA_NESTING, start)?;
                }
                b')' | b'>' if syntax == Syntax::Schema => {
                    self.advance(1);
                    depth = depth.saturating_sub(1);
                }
                b']' | b'}' => {
                    self.advance(1);
                    depth = depth.saturating_sub(1);
                }
                b'\n' => self.newline(1),
                _ => self.advance(1),
            }
        }
        Ok(())
    }

    fn operator(&mut self, frames: &mut [Frame], start: usize) -> Result<(), TooDeep> {
        if let Some(frame) = frames.last_mut() {
            frame.operators = frame.operators.saturating_add(1);
            let height = frame.segment_height();
            self.bound(height, MAX_EXPRESSION_HEIGHT, start)?;
        }
        Ok(())
    }

    fn bound(&self, value: usize, limit: usize, start: usize) -> Result<(), TooDeep> {
        if value <= limit {
            return Ok(());
        }
        let before = self.bytes.get(self.line_start..start).unwrap_or_default();
        // Columns count characters: every UTF-8 byte but continuation bytes starts one.
        let column = before.iter().filter(|b| (**b & 0xC0) != 0x80).count() + 1;
        Err(TooDeep {
            line: self.line,
            column: u32::try_from(column).unwrap_or(u32::MAX),
            limit,
        })
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at.saturating_add(ahead)).copied()
    }

    fn advance(&mut self, count: usize) {
        self.at = self.at.saturating_add(count).min(self.bytes.len());
    }

    fn newline(&mut self, count: usize) {
        self.advance(count);
        self.line = self.line.saturating_add(1);
        self.line_start = self.at;
    }

    /// A string literal, escapes included; an unterminated one runs to the end.
    fn string(&mut self) {
        self.advance(1);
        while let Some(byte) = self.peek(0) {
            match byte {
                b'"' => {
                    self.advance(1);
                    return;
                }
                b'\\' if self.peek(1) == Some(b'\n') => {
                    self.advance(1);
                    self.newline(1);
                }
                b'\\' => self.advance(2),
                b'\n' => self.newline(1),
                _ => self.advance(1),
            }
        }
    }

    /// A `//` comment, up to the end of its line.
    fn comment(&mut self) {
        while let Some(byte) = self.peek(0) {
            if byte == b'\n' || byte == b'\r' {
                return;
            }
            self.advance(1);
        }
    }

    fn word(&mut self) -> &[u8] {
        let start = self.at;
        while let Some(b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9') = self.peek(0) {
            self.advance(1);
        }
        self.bytes.get(start..self.at).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The height `permit(…)` and a condition's braces add around a condition.
    const HEAD: usize = 3;

    fn policy(body: &str) -> String {
        format!("permit(principal, action, resource) when {{ {body} }};")
    }

    fn depth_of(error: Result<(), TooDeep>) -> Option<usize> {
        error.err().map(|e| e.limit)
    }

    #[test]
    fn each_bracket_kind_counts_and_the_bound_is_inclusive() {
        // `when { … }` is one level already.
        let fits = MAX_POLICY_NESTING - 1;
        for (open, close) in [("(", ")"), ("[", "]"), ("{a: ", "}"), ("ip(", ")")] {
            let at_bound = policy(&format!("{}1{}", open.repeat(fits), close.repeat(fits)));
            assert_eq!(check(&at_bound, Syntax::Policy), Ok(()), "{open}");
            let over = policy(&format!(
                "{}1{}",
                open.repeat(fits + 1),
                close.repeat(fits + 1)
            ));
            assert_eq!(
                depth_of(check(&over, Syntax::Policy)),
                Some(MAX_POLICY_NESTING),
                "{open}"
            );
        }
    }

    #[test]
    fn nested_ifs_and_else_if_chains_count() {
        let fits = MAX_POLICY_NESTING - 1;
        let nested = |n: usize| {
            policy(&format!(
                "{}true{}",
                "if true then ".repeat(n),
                " else false".repeat(n)
            ))
        };
        let chain = |n: usize| policy(&format!("{}true", "if context.a then true else ".repeat(n)));
        assert_eq!(check(&nested(fits), Syntax::Policy), Ok(()));
        assert_eq!(check(&chain(fits), Syntax::Policy), Ok(()));
        assert!(check(&nested(fits + 1), Syntax::Policy).is_err());
        assert!(check(&chain(fits + 1), Syntax::Policy).is_err());
        // `if`s in separate list elements are not nested.
        let siblings = policy(&format!(
            "[{}]",
            vec!["if true then 1 else 2"; 100].join(", ")
        ));
        assert_eq!(check(&siblings, Syntax::Policy), Ok(()));
    }

    #[test]
    fn long_operator_chains_are_bounded_as_height() {
        for op in [
            " || ", " && ", " + ", " - ", " * ", " == ", " in ", " has ", " like ", ".",
        ] {
            let chain = |n: usize| policy(&format!("context{}", format!("{op}a").repeat(n)));
            assert_eq!(
                check(&chain(MAX_EXPRESSION_HEIGHT - HEAD), Syntax::Policy),
                Ok(()),
                "{op}"
            );
            assert_eq!(
                depth_of(check(
                    &chain(MAX_EXPRESSION_HEIGHT - HEAD + 1),
                    Syntax::Policy
                )),
                Some(MAX_EXPRESSION_HEIGHT),
                "{op}"
            );
        }
        // Indexing and calls chain too, and so do runs of unary operators.
        let indexing = |n: usize| policy(&format!("context{}", "[\"a\"]".repeat(n)));
        assert_eq!(
            check(&indexing(MAX_EXPRESSION_HEIGHT / 2), Syntax::Policy),
            Ok(())
        );
        assert!(check(&indexing(MAX_EXPRESSION_HEIGHT), Syntax::Policy).is_err());
        let calls = |n: usize| policy(&format!("f{}", "(1)".repeat(n)));
        assert!(check(&calls(MAX_EXPRESSION_HEIGHT), Syntax::Policy).is_err());
        for unary in ["!", "-"] {
            let run = policy(&format!("{}1", unary.repeat(MAX_EXPRESSION_HEIGHT)));
            assert!(check(&run, Syntax::Policy).is_err(), "{unary}");
        }
        // Chains in separate elements and separate policies do not add up.
        let elements = policy(&format!("[{}]", vec!["1 + 1"; 10_000].join(", ")));
        assert_eq!(check(&elements, Syntax::Policy), Ok(()));
        let many = policy("context.a || context.b").repeat(10_000);
        assert_eq!(check(&many, Syntax::Policy), Ok(()));
    }

    #[test]
    fn a_chain_inside_brackets_adds_to_the_chain_around_them() {
        let half = MAX_EXPRESSION_HEIGHT / 2;
        let inner = format!("(1{})", " + 1".repeat(half));
        // One level for the bracket as an operand, one as a node.
        let fits = policy(&format!("{inner}{}", " + 1".repeat(half - HEAD - 2)));
        assert_eq!(check(&fits, Syntax::Policy), Ok(()));
        let over = policy(&format!("{inner}{}", " + 1".repeat(half + 1)));
        assert!(check(&over, Syntax::Policy).is_err());
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "(".repeat(1_000);
        let text = format!(
            "// {deep}\npermit(principal, action, resource) when {{ context.s == \"{deep}\\\"{deep}\" }};"
        );
        assert_eq!(check(&text, Syntax::Policy), Ok(()));
        let schema = format!("// {deep}\n@doc(\"{deep}\") entity User;");
        assert_eq!(check(&schema, Syntax::Schema), Ok(()));
        let json = format!("[{{\"a\": \"{deep}\\\"[[[\"}}]");
        assert_eq!(check(&json, Syntax::Json), Ok(()));
    }

    #[test]
    fn position_is_the_bracket_past_the_bound() {
        let text = format!("\n\n  é{}", "(".repeat(MAX_POLICY_NESTING + 1));
        let error = check(&text, Syntax::Policy).unwrap_err();
        assert_eq!(
            (error.line, error.column),
            (3, 4 + MAX_POLICY_NESTING as u32)
        );
    }

    #[test]
    fn schema_sets_records_and_json_nesting_are_bounded() {
        let sets = |n: usize| {
            format!(
                "entity User {{ a: {}Long{} }};",
                "Set<".repeat(n),
                ">".repeat(n)
            )
        };
        assert_eq!(check(&sets(MAX_DATA_NESTING - 1), Syntax::Schema), Ok(()));
        assert!(check(&sets(MAX_DATA_NESTING), Syntax::Schema).is_err());
        let json = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(check(&json(MAX_DATA_NESTING), Syntax::Json), Ok(()));
        assert_eq!(
            depth_of(check(&json(MAX_DATA_NESTING + 1), Syntax::Json)),
            Some(MAX_DATA_NESTING)
        );
    }

    #[test]
    fn unbalanced_and_odd_text_does_not_fail_the_scan() {
        for text in ["))))", "]]]}}}", "\"unterminated", "//", "::::", "if", "\\"] {
            assert_eq!(check(text, Syntax::Policy), Ok(()), "{text}");
            assert_eq!(check(text, Syntax::Schema), Ok(()), "{text}");
            assert_eq!(check(text, Syntax::Json), Ok(()), "{text}");
        }
    }
}
