//! Cutting a long list of targets into pieces that the YAML parser reads alone, so that a
//! configuration of thousands of targets is read on every core, in pieces small enough that
//! the parser's event buffer stays in memory already in use.
//!
//! Only the plain block layout is cut, one item per `- ` line at the list's indentation:
//!
//! ```yaml
//! targets:
//!   - {name: a, type: dialog360, api_key: k}
//!   - name: b
//!     type: kapso
//! ```
//!
//! A cut can still land inside a construct that spans lines (a quoted scalar or a flow
//! collection continued on a line that looks like an item); the piece before the cut then
//! ends with that construct unterminated, which the parser refuses. An alias to an anchor of
//! another piece is refused too. So a document is read in pieces only when every piece
//! reads without error, and otherwise as a whole (see [`crate::config`]).

/// The one item of the list that takes the place of the targets' items in the rest of the
/// config file. Reading the rest finds it as the value of a top-level `targets` key only when
/// the `targets:` line was a key of the top-level block mapping: not text inside a
/// multi-line scalar (the placeholder would be text too), nor inside a flow mapping (where a
/// `- ` item is an error).
pub(crate) const PLACEHOLDER: &str = "whatsapp-exporter-targets-read-in-pieces";

/// A document whose targets are read piece by piece.
#[derive(Debug, PartialEq)]
pub(crate) struct Split<'a> {
    /// The config file with a list of [`PLACEHOLDER`] alone as the value of `targets`;
    /// `None` for a target file, which is the list alone.
    pub rest: Option<String>,
    /// The items, `per_piece` to a piece (the last may have fewer), in order: each a YAML
    /// list on its own.
    pub pieces: Vec<&'a str>,
}

/// The config file's `targets` cut into pieces of `per_piece` items, or `None` when its
/// layout is not the plain one (or `targets` has no items).
pub(crate) fn split_config(text: &str, per_piece: usize) -> Option<Split<'_>> {
    if text.contains(PLACEHOLDER) {
        return None;
    }
    let mut lines = lines_with_offsets(text);
    let (key_start, key_line) = lines.find(|(_, line)| is_targets_key(line))?;
    let key_end = key_start + key_line.len();
    // A second `targets:` line is an error the whole reading reports.
    if lines_with_offsets(&text[key_end..]).any(|(_, line)| is_targets_key(line)) {
        return None;
    }
    let list = &text[key_end..];
    let (pieces, list_end) = cut_list(list, per_piece, Ending::AtTopLevelLine)?;
    let mut rest = String::with_capacity(text.len() - (list_end + key_end - key_start) + 64);
    rest.push_str(&text[..key_start]);
    rest.push_str("targets:\n  - ");
    rest.push_str(PLACEHOLDER);
    rest.push('\n');
    rest.push_str(&list[list_end..]);
    Some(Split {
        rest: Some(rest),
        pieces,
    })
}

/// A target file (a YAML list of targets) cut into pieces of `per_piece` items, or `None`
/// when its layout is not the plain one.
pub(crate) fn split_target_file(text: &str, per_piece: usize) -> Option<Split<'_>> {
    let (pieces, _) = cut_list(text, per_piece, Ending::AtEnd)?;
    Some(Split { rest: None, pieces })
}

/// Where a list ends.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    /// At the first line at column 0 that is not an item or a comment: the next key of
    /// the config file.
    AtTopLevelLine,
    /// At the end of the text: a target file.
    AtEnd,
}

/// The items of the list that `text` starts with (after blank and comment lines), cut
/// into pieces; and where the list ends in `text`.
fn cut_list(text: &str, per_piece: usize, ending: Ending) -> Option<(Vec<&str>, usize)> {
    let per_piece = per_piece.max(1);
    let mut pieces = Vec::new();
    let mut item_indent = None;
    let mut piece_start = 0;
    let mut items_in_piece = 0;
    let mut end = text.len();
    for (start, line) in lines_with_offsets(text) {
        match (Line::of(line), item_indent) {
            (Line::Blank | Line::Comment, _) => {}
            (Line::Item(indent), None) => {
                item_indent = Some(indent);
                // Comments before the first item stay with a target file's first piece.
                if ending == Ending::AtTopLevelLine {
                    piece_start = start;
                }
                items_in_piece = 1;
            }
            (Line::Item(indent), Some(list)) if indent == list => {
                if items_in_piece == per_piece {
                    pieces.push(&text[piece_start..start]);
                    piece_start = start;
                    items_in_piece = 0;
                }
                items_in_piece += 1;
            }
            (Line::Item(indent) | Line::Other(indent), Some(list)) if indent > list => {}
            (Line::Item(0) | Line::Other(0), Some(_)) if ending == Ending::AtTopLevelLine => {
                end = start;
                break;
            }
            // Less indented than the items, or not an item at their indentation, or a tab
            // where indentation is counted: not the plain layout.
            _ => return None,
        }
    }
    item_indent?;
    pieces.push(&text[piece_start..end]);
    Some((pieces, end))
}

/// The lines of `text` with their line breaks, each with its offset.
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0, |offset, line| {
        let start = *offset;
        *offset += line.len();
        Some((start, line))
    })
}

/// `targets:` at column 0, alone on its line but for a comment.
fn is_targets_key(line: &str) -> bool {
    let Some(after) = line.strip_prefix("targets:") else {
        return false;
    };
    let after = after.trim_end_matches(['\n', '\r']);
    let value = after.trim_start_matches(' ');
    value.is_empty() || (value.starts_with('#') && after.starts_with(' '))
}

/// A line as far as cutting a list goes.
#[derive(Debug, PartialEq)]
enum Line {
    Blank,
    Comment,
    /// `- ` (or a lone `-`) after this many spaces.
    Item(usize),
    /// Anything else after this many spaces.
    Other(usize),
    /// A tab in the indentation.
    Tab,
}

impl Line {
    fn of(line: &str) -> Line {
        let body = line.trim_end_matches(['\n', '\r']);
        let content = body.trim_start_matches(' ');
        let indent = body.len() - content.len();
        if content.is_empty() {
            Line::Blank
        } else if content.starts_with('\t') {
            Line::Tab
        } else if content.starts_with('#') {
            Line::Comment
        } else if content == "-" || content.starts_with("- ") {
            Line::Item(indent)
        } else {
            Line::Other(indent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_by_their_start() {
        assert_eq!(Line::of("\n"), Line::Blank);
        assert_eq!(Line::of("   \r\n"), Line::Blank);
        assert_eq!(Line::of("  # c\n"), Line::Comment);
        assert_eq!(Line::of("  - {name: a}\n"), Line::Item(2));
        assert_eq!(Line::of("-\n"), Line::Item(0));
        assert_eq!(Line::of("    name: a"), Line::Other(4));
        assert_eq!(Line::of("  -x\n"), Line::Other(2));
        assert_eq!(Line::of("  \t- a\n"), Line::Tab);
    }

    #[test]
    fn the_targets_key_is_alone_on_its_line() {
        assert!(is_targets_key("targets:\n"));
        assert!(is_targets_key("targets:  \r\n"));
        assert!(is_targets_key("targets: # the fleet\n"));
        assert!(!is_targets_key("targets:# not a comment\n"));
        assert!(!is_targets_key("targets: []\n"));
        assert!(!is_targets_key("  targets:\n"));
        assert!(!is_targets_key("targets_x:\n"));
    }

    #[test]
    fn a_config_is_cut_between_items_and_keeps_its_other_keys() {
        let text = "global:\n  interval: 30s\ntargets: # all\n\n  - {name: a}\n  - name: b\n    type: x\n  # between\n  - name: c\n\n  - {name: d}\n# before the next key\ntarget_files: [t.yaml]\n";
        let split = split_config(text, 2).unwrap();
        assert_eq!(
            split.pieces,
            [
                "  - {name: a}\n  - name: b\n    type: x\n  # between\n",
                "  - name: c\n\n  - {name: d}\n# before the next key\n"
            ]
        );
        assert_eq!(
            split.rest.as_deref(),
            Some(
                "global:\n  interval: 30s\ntargets:\n  - whatsapp-exporter-targets-read-in-pieces\ntarget_files: [t.yaml]\n"
            )
        );
        assert_eq!(split_config(text, 3).unwrap().pieces.len(), 2);
        assert_eq!(split_config(text, 4).unwrap().pieces.len(), 1);
        // Items at column 0 and a file without a final line break.
        let text = "targets:\n- {name: a}\n- {name: b}";
        let split = split_config(text, 1).unwrap();
        assert_eq!(split.pieces, ["- {name: a}\n", "- {name: b}"]);
        assert_eq!(
            split.rest.as_deref(),
            Some("targets:\n  - whatsapp-exporter-targets-read-in-pieces\n")
        );
    }

    #[test]
    fn other_layouts_are_not_cut() {
        for text in [
            "targets: [{name: a}, {name: b}]\n",
            "targets:\n",
            "targets:\n# none\nglobal: {}\n",
            "global: {}\n",
            // Less indented than the items, and not an item at their indentation.
            "targets:\n  - {name: a}\n - {name: b}\n",
            "targets:\n  - name: a\n  type: x\n",
            "targets:\n  - name: a\n  \t- b\n",
            // Twice: the whole reading reports the duplicate key.
            "targets:\n  - {name: a}\ntargets:\n  - {name: b}\n",
            "targets:\n  - {name: whatsapp-exporter-targets-read-in-pieces}\n",
        ] {
            assert_eq!(split_config(text, 1), None, "{text}");
        }
    }

    #[test]
    fn a_target_file_is_cut_to_its_end() {
        let text = "# fleet\n- {name: a}\n- {name: b}\n\n- name: c\n  type: x\n";
        assert_eq!(
            split_target_file(text, 2).unwrap().pieces,
            [
                "# fleet\n- {name: a}\n- {name: b}\n\n",
                "- name: c\n  type: x\n"
            ]
        );
        for text in [
            "[{name: a}]\n",
            "",
            "# nothing\n",
            "- {name: a}\nkey: value\n",
            "---\n- {name: a}\n",
        ] {
            assert_eq!(split_target_file(text, 1), None, "{text}");
        }
    }
}
