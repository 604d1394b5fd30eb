//! The operator's prompt blocklist (`limits.blocked_words`), checked before anything renders.
//!
//! Text and entries are folded the same way before matching: NFKC (so full-width and styled
//! letters read as plain ones), lower case, accents and other combining marks dropped, and
//! invisible characters removed — then split into words at anything that is not a letter or a
//! digit. An entry matches a run of whole words, so "ass" blocks "ass" but not "class" (the
//! Scunthorpe problem), and "n.s.f.w" or "N S F W" do not slip past an entry "n s f w".

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folded entries, each a sequence of words.
#[derive(Debug, Clone, Default)]
pub struct Blocklist {
    entries: Vec<Vec<String>>,
}

impl Blocklist {
    /// From the configured entries; entries with no letters or digits are ignored.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Blocklist {
        Blocklist {
            entries: entries
                .iter()
                .map(|e| words(e.as_ref()))
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `text` contains any entry as a run of whole words.
    pub fn blocks(&self, text: &str) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let text = words(text);
        // Also the words with single letters joined up, so "n.s.f.w" meets "nsfw".
        let joined = join_single_letters(&text);
        self.entries
            .iter()
            .any(|entry| contains_run(&text, entry) || contains_run(&joined, entry))
    }
}

/// The folded words of `text`.
fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .nfd()
        .filter(|c| !is_combining_mark(*c) && !is_invisible(*c))
        .collect();
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Format characters that render as nothing and would otherwise split or hide a word.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Runs of one-letter words merged into one word: ["n", "s", "f", "w", "art"] → ["nsfw", "art"].
fn join_single_letters(words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut run = String::new();
    for w in words {
        if w.chars().count() == 1 {
            run.push_str(w);
            continue;
        }
        if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
        out.push(w.clone());
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

fn contains_run(text: &[String], entry: &[String]) -> bool {
    entry.len() <= text.len() && text.windows(entry.len()).any(|w| w == entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_whole_words_after_folding() {
        let list = Blocklist::new(&["badword", "two words", "nsfw"]);
        let blocked = [
            "a badword cat",
            "BADWORD",
            "Ｂａｄｗｏｒｄ in full width",
            "bädwörd with accents",
            "bad\u{200B}word with a zero-width space",
            "bad\u{00AD}word with a soft hyphen",
            "\u{202E}badword\u{202C} inside RTL overrides",
            "ba\u{0301}dword with a combining accent",
            "two   Words apart",
            "two-words hyphenated",
            "n.s.f.w spelled out",
            "N S F W with spaces",
            "𝐛𝐚𝐝𝐰𝐨𝐫𝐝 in bold maths letters",
        ];
        for text in blocked {
            assert!(list.blocks(text), "{text:?} should be blocked");
        }
        let fine = [
            "a badwordsmith", // a longer word
            "words two",      // wrong order
            "a red ball bouncing",
            "",
            "🎉🎉🎉",
            "نسفو بالعربية",
        ];
        for text in fine {
            assert!(!list.blocks(text), "{text:?} should pass");
        }
    }

    #[test]
    fn an_empty_or_wordless_list_blocks_nothing() {
        assert!(Blocklist::new::<&str>(&[]).is_empty());
        let list = Blocklist::new(&["", "  ", "!!!"]);
        assert!(list.is_empty());
        assert!(!list.blocks("anything at all"));
    }

    #[test]
    fn entries_fold_like_the_text() {
        let list = Blocklist::new(&["ＮＳＦＷ", "Crème"]);
        assert!(list.blocks("nsfw"));
        assert!(list.blocks("creme brulee"));
    }
}
