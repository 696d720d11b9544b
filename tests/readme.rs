//! The README's contents list and in-page links lead to its headings, and its "Adding a
//! provider" section shows the registry as the code has it.

use std::path::Path;

mod markdown;
use markdown::{anchor, headings};

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// GitHub's anchor of each heading, with `-1`, `-2`, ... on repeats.
fn anchors(headings: &[(usize, String)]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    headings
        .iter()
        .map(|(_, text)| {
            let slug = anchor(text);
            let n = seen.entry(slug.clone()).or_insert(0);
            let numbered = if *n == 0 { slug } else { format!("{slug}-{n}") };
            *n += 1;
            numbered
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
