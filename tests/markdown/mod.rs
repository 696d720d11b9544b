//! Markdown helpers shared by the tests that read the README and the runbook.

/// GitHub's anchor for a Markdown heading: lowercase, spaces to hyphens, punctuation other
/// than hyphens and underscores dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a Markdown text outside code blocks, as (level, text).
pub fn headings(markdown: &str) -> Vec<(usize, String)> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if level > 0 && line[level..].starts_with(' ') {
            found.push((level, line[level..].trim().to_owned()));
        }
    }
    found
}
