//! A request's query string, form-decoded, as the exporter's own endpoints read it
//! (`/probe`, the webhook handshake).

/// The decoded `key=value` pairs of a query string (without the `?`), in order.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: &str) -> Self {
        // The url crate's form decoding, on a URL made only to carry the query.
        let pairs = reqwest::Url::parse(&format!("http://query/?{query}"))
            .map(|url| url.query_pairs().into_owned().collect())
            .unwrap_or_default();
        QueryParams(pairs)
    }

    /// The value of `name`; of a repeated key the first counts.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_the_first_of_a_key_counts() {
        let q = QueryParams::parse("a=1&b=x%20y+z&a=2&empty=");
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get("b"), Some("x y z"));
        assert_eq!(q.get("empty"), Some(""));
        assert_eq!(q.get("missing"), None);
        assert_eq!(QueryParams::parse("").get("a"), None);
    }
}
