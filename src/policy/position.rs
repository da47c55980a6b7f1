//! Line and column of the offsets in Cedar's diagnostics, in time linear in the text: a large
//! file with an error in every policy must not be rescanned from its start for each error.

use std::collections::HashMap;

/// Bytes between two checkpoints: finding one position scans at most about this much.
const STEP: usize = 256;

/// Line and column (0-based, columns in characters) at a byte offset.
#[derive(Clone, Copy)]
struct Checkpoint {
    byte: usize,
    line: usize,
    column: usize,
}

/// Checkpoints through one text, one every [`STEP`] bytes, on character boundaries.
pub(super) struct TextIndex {
    checkpoints: Vec<Checkpoint>,
}

impl TextIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut checkpoints = vec![Checkpoint {
            byte: 0,
            line: 0,
            column: 0,
        }];
        let (mut line, mut column, mut next) = (0, 0, STEP);
        for (byte, c) in text.char_indices() {
            if byte >= next {
                checkpoints.push(Checkpoint { byte, line, column });
                next = byte + STEP;
            }
            (line, column) = advance(line, column, c);
        }
        Self { checkpoints }
    }

    /// Line and column (1-based, columns in characters) of byte `offset` in `text`, the text
    /// this index was made of; `None` past its end or inside a character.
    pub(super) fn position(&self, text: &str, offset: usize) -> Option<(u32, u32)> {
        if !text.is_char_boundary(offset) {
            return None;
        }
        let at = self
            .checkpoints
            .partition_point(|checkpoint| checkpoint.byte <= offset)
            .checked_sub(1)?;
        let start = self.checkpoints.get(at)?;
        let (line, column) = text
            .get(start.byte..offset)?
            .chars()
            .fold((start.line, start.column), |(line, column), c| {
                advance(line, column, c)
            });
        Some((one_based(line), one_based(column)))
    }
}

fn advance(line: usize, column: usize, c: char) -> (usize, usize) {
    if c == '\n' {
        (line + 1, 0)
    } else {
        (line, column + 1)
    }
}

fn one_based(n: usize) -> u32 {
    u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX)
}

/// The [`TextIndex`] of each text positions were asked in, made on first use.
#[derive(Default)]
pub(super) struct Positions {
    /// Keyed by where the text lies and its length: the texts outlive this cache.
    indexes: HashMap<(usize, usize), TextIndex>,
}

impl Positions {
    /// Line and column of the error's first labelled span in `text`.
    pub(super) fn of(&mut self, error: &dyn miette::Diagnostic, text: &str) -> Option<(u32, u32)> {
        let offset = error.labels()?.next()?.offset();
        self.indexes
            .entry((text.as_ptr().addr(), text.len()))
            .or_insert_with(|| TextIndex::new(text))
            .position(text, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: newlines before the offset, characters after the last one.
    fn by_definition(text: &str, offset: usize) -> Option<(u32, u32)> {
        let before = text.get(..offset)?;
        let line = before.matches('\n').count();
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |tail| tail.chars().count());
        Some((one_based(line), one_based(column)))
    }

    #[test]
    fn every_offset_agrees_with_the_definition() {
        let line = "permit(principal, action, resource) when { \"é€𝄞\" == \"x\" };\n";
        let texts = [
            String::new(),
            "\n\n\n".to_owned(),
            line.repeat(40),
            format!("{}\n{}", "é".repeat(700), "a".repeat(600)),
            "𝄞".repeat(300),
        ];
        for text in &texts {
            let index = TextIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    index.position(text, offset),
                    by_definition(text, offset),
                    "offset {offset} of a text of {} bytes",
                    text.len()
                );
            }
        }
    }

    /// Each text is indexed once, however many errors it has (each error used to rescan its
    /// text from the start: errors × size).
    #[test]
    fn each_text_is_indexed_once() {
        let text = "permit(principal, action, resource);\n".repeat(1000);
        let copy = text.clone();
        let mut positions = Positions::default();
        let error = miette::miette!(
            labels = vec![miette::LabeledSpan::at_offset(37 * 999, "here")],
            "bad"
        );
        for _ in 0..100 {
            assert_eq!(positions.of(&*error, &text), Some((1000, 1)));
            assert_eq!(positions.of(&*error, &copy), Some((1000, 1)));
        }
        assert_eq!(positions.indexes.len(), 2);
    }

    #[test]
    fn an_index_keeps_one_checkpoint_per_step() {
        let text = "a".repeat(10 * STEP);
        assert_eq!(TextIndex::new(&text).checkpoints.len(), 10);
        assert_eq!(TextIndex::new("").checkpoints.len(), 1);
    }
}
