//! What a word is, and the sort orders: the SPEC's search semantics that
//! the index, the daemon, the module and the SQL baseline all share.
//!
//! - A word is a run of letters/digits (`char::is_alphanumeric`),
//!   lowercased; a query's repeated words count once.
//! - A product matches when every query word is a whole token of its name,
//!   brand or description (no stemming, no substrings).
//! - `relevance`: 3 x (query words in the name) + 2 x (in the brand) +
//!   1 x (in the description), highest first; ties, and the other sorts'
//!   ties, by id ascending. `newest`: created, newest first.
use std::fmt;

/// Results on a page.
pub const PER_PAGE: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Relevance, Sort::PriceAsc, Sort::PriceDesc, Sort::Newest];

    /// `relevance`, `price_asc`, `price_desc` or `newest`.
    pub fn parse(name: &str) -> Option<Sort> {
        match name {
            "relevance" => Some(Sort::Relevance),
            "price_asc" => Some(Sort::PriceAsc),
            "price_desc" => Some(Sort::PriceDesc),
            "newest" => Some(Sort::Newest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Newest => "newest",
        }
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The tokens of `text`, in order, repeats kept: its runs of letters and
/// digits, each lowercased. Query words and product text are cut the same
/// way (sql/005_search.sql's `esf_tokens` is the SQL twin).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|run| !run.is_empty()).map(str::to_lowercase).collect()
}

/// A query's words: its tokens, each once, in order of first appearance.
pub fn query_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for token in tokens(query) {
        if !words.contains(&token) {
            words.push(token);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_runs_of_letters_and_digits_lowercased() {
        assert_eq!(tokens("Wooden Train-Set, 3 pieces!"), ["wooden", "train", "set", "3", "pieces"]);
        assert_eq!(tokens("Collector's <Limited Edition>"), ["collector", "s", "limited", "edition"]);
        assert_eq!(tokens("Müller's Café & Co."), ["müller", "s", "café", "co"]);
        assert_eq!(tokens("R2D2 x86_64"), ["r2d2", "x86", "64"]);
        assert_eq!(tokens("  --  "), Vec::<String>::new());
        assert_eq!(tokens(""), Vec::<String>::new());
        assert_eq!(tokens("Train train TRAIN"), ["train", "train", "train"]);
    }

    #[test]
    fn unicode_lowercasing_is_full_and_per_token() {
        // İ becomes i + combining dot above, inside its token.
        assert_eq!(tokens("İSTANBUL"), ["i\u{307}stanbul"]);
        // Final sigma at the end of each token.
        assert_eq!(tokens("ΟΔΟΣ-ΣΑΣ"), ["οδος", "σας"]);
        assert_eq!(tokens("ПРИВЕТ мир"), ["привет", "мир"]);
        assert_eq!(tokens("東京タワー"), ["東京タワー"]);
    }

    #[test]
    fn query_words_count_once_in_order() {
        assert_eq!(query_words("Train wooden TRAIN train, wooden"), ["train", "wooden"]);
        assert!(query_words(" ,.; ").is_empty());
    }

    #[test]
    fn sorts_parse_by_name() {
        for sort in Sort::ALL {
            assert_eq!(Sort::parse(sort.name()), Some(sort));
        }
        assert_eq!(Sort::parse("Relevance"), None);
        assert_eq!(Sort::parse(""), None);
    }

    #[test]
    fn words_are_not_cut_again() {
        // Lowercasing may give a character that is not alphanumeric (İ's
        // combining dot): cutting words again can split them, so the
        // daemon's protocol carries words as they are.
        let words = query_words("İSTANBUL");
        assert_eq!(words, ["i\u{307}stanbul"]);
        assert_ne!(query_words(&words.join(" ")), words);
        // No word holds a space, so words travel joined by spaces.
        assert!(query_words("ΟΔΟΣ-ΣΑΣ x86_64 R2-D2 naïve\u{301} 東京").iter().all(|w| !w.contains(' ')));
    }
}
