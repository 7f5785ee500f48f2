//! Text analysis: how field values and query text become terms.
//!
//! Four analysers, registered on every open (tantivy does not persist them):
//!
//! * [`TEXT`]: split on anything that is not a letter or digit, drop absurdly
//!   long tokens, fold to ASCII ("Müller" → "muller"), lower-case. Used for the
//!   searchable fields and, without the length filter, for query words.
//! * [`PREFIX`]: the same, then every token also as each of its leading
//!   1..=[`MAX_GRAM`] characters (edge n-grams). A prefix query is then one
//!   term lookup instead of a walk over the term dictionary.
//! * [`PREFIX3`]: edge n-grams from 3 characters, for the fields where
//!   shorter prefixes are never looked up (they would match nearly everything).
//! * [`LOWER`]: the whole value as one token, lower-cased. Used for exact,
//!   case-insensitive filters (locality) and the LDAP attribute fields.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
    Token, TokenFilter, TokenStream, Tokenizer, TokenizerManager,
};

/// Name of the word analyser.
pub(crate) const TEXT: &str = "ccdir_text";
/// Name of the edge n-gram analyser.
pub(crate) const PREFIX: &str = "ccdir_prefix";
/// Name of the edge n-gram analyser that starts at [`MIN_LONG_PREFIX`] characters.
pub(crate) const PREFIX3: &str = "ccdir_prefix3";
/// Name of the whole-value lower-casing analyser.
pub(crate) const LOWER: &str = "ccdir_lower";

/// Tokens longer than this (in bytes, after folding) are not indexed. Nothing
/// a person types into a directory search is that long; such a query word
/// simply matches nothing.
pub(crate) const MAX_TOKEN_BYTES: usize = 64;

/// Longest prefix indexed, in characters. A longer query prefix is cut to
/// this length, which can only widen the match among words that share their
/// first 12 characters. Most words are shorter; the cap keeps long domain
/// labels from dominating the index.
pub(crate) const MAX_GRAM: usize = 12;

/// Shortest prefix looked up outside the name fields (and indexed by [`PREFIX3`]).
pub(crate) const MIN_LONG_PREFIX: usize = 3;

fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(AsciiFoldingFilter)
        .filter(LowerCaser)
        .build()
}

fn prefix_analyzer(min_chars: usize) -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(AsciiFoldingFilter)
        .filter(LowerCaser)
        .filter(EdgeNgrams { min_chars })
        .build()
}

fn lower_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build()
}

/// Registers our analysers on an index's tokenizer manager.
pub(crate) fn register(manager: &TokenizerManager) {
    manager.register(TEXT, text_analyzer());
    manager.register(PREFIX, prefix_analyzer(1));
    manager.register(PREFIX3, prefix_analyzer(MIN_LONG_PREFIX));
    manager.register(LOWER, lower_analyzer());
}

/// The query side of [`TEXT`]: the same folding and lower-casing, but long
/// words are kept so that the caller can see them (and match nothing) rather
/// than have them silently dropped, which would widen the query.
pub(crate) fn query_words(text: &str) -> Vec<String> {
    let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(AsciiFoldingFilter)
        .filter(LowerCaser)
        .build();
    let mut stream = analyzer.token_stream(text);
    let mut words: Vec<String> = Vec::new();
    while let Some(token) = stream.next() {
        if !words.contains(&token.text) {
            words.push(token.text.clone());
        }
    }
    words
}

/// A whole value as it is stored in a [`LOWER`] field and looked up in one:
/// trimmed, then lower-cased char by char exactly as tantivy's `LowerCaser` does.
pub(crate) fn lower(value: &str) -> String {
    value.trim().chars().flat_map(char::to_lowercase).collect()
}

/// The first `MAX_GRAM` characters of a word: the term to look up in a prefix field.
pub(crate) fn gram(word: &str) -> &str {
    match word.char_indices().nth(MAX_GRAM) {
        Some((end, _)) => &word[..end],
        None => word,
    }
}

/// Token filter that replaces each token by its leading
/// `min_chars..=MAX_GRAM` characters (a shorter token yields nothing).
#[derive(Clone, Copy)]
struct EdgeNgrams {
    min_chars: usize,
}

impl TokenFilter for EdgeNgrams {
    type Tokenizer<T: Tokenizer> = EdgeNgramTokenizer<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> EdgeNgramTokenizer<T> {
        EdgeNgramTokenizer {
            inner,
            min_chars: self.min_chars,
        }
    }
}

#[derive(Clone)]
struct EdgeNgramTokenizer<T> {
    inner: T,
    min_chars: usize,
}

impl<T: Tokenizer> Tokenizer for EdgeNgramTokenizer<T> {
    type TokenStream<'a> = EdgeNgramStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        EdgeNgramStream {
            tail: self.inner.token_stream(text),
            min_chars: self.min_chars,
            word: String::new(),
            ends: Vec::new(),
            next: 0,
            token: Token::default(),
        }
    }
}

struct EdgeNgramStream<S> {
    tail: S,
    min_chars: usize,
    /// The current whole token.
    word: String,
    /// Byte offsets in `word` where each prefix ends (on char boundaries).
    ends: Vec<usize>,
    /// Index into `ends` of the next prefix to emit.
    next: usize,
    token: Token,
}

impl<S: TokenStream> TokenStream for EdgeNgramStream<S> {
    fn advance(&mut self) -> bool {
        loop {
            if let Some(&end) = self.ends.get(self.next) {
                self.next += 1;
                self.token.text.clear();
                self.token.text.push_str(&self.word[..end]);
                return true;
            }
            if !self.tail.advance() {
                return false;
            }
            let whole = self.tail.token();
            self.word.clear();
            self.word.push_str(&whole.text);
            self.ends.clear();
            self.ends.extend(
                self.word
                    .char_indices()
                    .take(MAX_GRAM)
                    .map(|(i, c)| i + c.len_utf8())
                    .skip(self.min_chars - 1),
            );
            self.next = 0;
            self.token.offset_from = whole.offset_from;
            self.token.offset_to = whole.offset_to;
            self.token.position = whole.position;
            self.token.position_length = whole.position_length;
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mut analyzer: TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    #[test]
    fn text_folds_and_lowercases() {
        assert_eq!(
            tokens(text_analyzer(), "Dr. Jürgen MÜLLER-Straße"),
            ["dr", "jurgen", "muller", "strasse"]
        );
    }

    #[test]
    fn prefix_emits_edge_ngrams_on_char_boundaries() {
        assert_eq!(tokens(prefix_analyzer(1), "Bö x"), ["b", "bo", "x"]);
        let long = "a".repeat(30);
        assert_eq!(tokens(prefix_analyzer(1), &long).len(), MAX_GRAM);
        assert_eq!(
            tokens(prefix_analyzer(3), "Boston MA"),
            ["bos", "bost", "bosto", "boston"]
        );
    }

    #[test]
    fn query_words_dedupe_and_keep_long_words() {
        let long = "b".repeat(100);
        assert_eq!(
            query_words(&format!("Smith smith \"{long}\":")),
            ["smith".to_owned(), long]
        );
        assert!(query_words(" :: \"\" ").is_empty());
    }

    #[test]
    fn gram_cuts_on_char_boundary() {
        let word = "é".repeat(25);
        assert_eq!(gram(&word).chars().count(), MAX_GRAM);
        assert_eq!(gram("abc"), "abc");
    }
}
