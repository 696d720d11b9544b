//! The README's contents list and in-page links lead to its headings, and its "Adding a
//! provider" section shows the registry as the code has it.

use std::path::Path;

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// The headings outside code blocks, with their level.
fn headings(markdown: &str) -> Vec<(usize, String)> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && line[level..].starts_with(' ') {
            out.push((level, line[level + 1..].trim().to_owned()));
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`, and
/// `-1`, `-2`, ... on repeats.
fn anchors(headings: &[(usize, String)]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    headings
        .iter()
        .map(|(_, text)| {
            let slug: String = text
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            let n = seen.entry(slug.clone()).or_insert(0);
            let anchor = if *n == 0 { slug } else { format!("{slug}-{n}") };
            *n += 1;
            anchor
        })
        .collect()
}

#[test]
fn the_contents_list_every_section_in_order() {
    let readme = read("README.md");
    let all = headings(&readme);
    let anchors = anchors(&all);
    let expected: Vec<String> = all
        .iter()
        .zip(&anchors)
        .filter(|((level, _), _)| matches!(level, 2 | 3))
        .map(|((level, text), anchor)| {
            let indent = if *level == 3 { "  " } else { "" };
            format!("{indent}- [{text}](#{anchor})")
        })
        .collect();
    let start = readme.find("<!-- toc -->").expect("contents marker");
    let end = readme.find("<!-- /toc -->").expect("contents end marker");
    let listed: Vec<String> = readme[start..end]
        .lines()
        .filter(|l| l.trim_start().starts_with("- ["))
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, expected);
    assert!(
        start < readme.find("\n## ").unwrap(),
        "the contents come first"
    );
}

#[test]
fn in_page_links_lead_to_headings() {
    let readme = read("README.md");
    let anchors = anchors(&headings(&readme));
    let mut checked = 0;
    for (at, _) in readme.match_indices("](#") {
        let rest = &readme[at + 3..];
        let anchor = &rest[..rest.find(')').unwrap()];
        assert!(
            anchors.iter().any(|a| a == anchor),
            "#{anchor} leads nowhere"
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} links found");
}

#[test]
fn adding_a_provider_shows_the_registry_of_the_code() {
    let code = read("src/providers/mod.rs");
    let registry = &code[code.rfind("registry! {").expect("registry! call")..];
    let registered: Vec<&str> = registry
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .collect();
    assert!(registered.len() >= 4, "{registered:?}");
    let readme = read("README.md");
    let section = &readme[readme.find("### Adding a provider").unwrap()..];
    let shown = &section[section.find("registry! {").unwrap()..];
    let shown: Vec<&str> = shown
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .collect();
    assert!(!shown.is_empty(), "the README's registry! block is empty");
    assert_eq!(shown[..shown.len() - 1], registered[..]);
    assert_eq!(shown.last(), Some(&"    relay::RelayTarget => Relay,"));
}
