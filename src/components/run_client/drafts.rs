//! Drafts in localStorage: one program per language (its files, entry, arguments and
//! limits), and the language last used.

use super::Draft;
use web_sys::Storage;

const LAST_LANG: &str = "own-ide:language";

fn draft_key(lang: &str) -> String {
    format!("own-ide:program:{lang}")
}

/// Where drafts of a single file were kept before programs had several: still read, so
/// an update loses no one's work.
fn old_draft_key(lang: &str) -> String {
    format!("own-ide:draft:{lang}")
}

/// The browser's localStorage; a browser that refuses it simply keeps no drafts, so
/// every write here ignores failure.
pub struct Drafts(Storage);

impl Drafts {
    pub fn open() -> Option<Drafts> {
        web_sys::window()?.local_storage().ok()?.map(Drafts)
    }

    /// The draft of `lang`; `source_file` names an old single-file draft's file.
    pub fn get(&self, lang: &str, source_file: &str) -> Option<Draft> {
        let stored = self.0.get_item(&draft_key(lang)).ok().flatten();
        if let Some(d) = stored
            .and_then(|s| serde_json::from_str::<Draft>(&s).ok())
            .filter(|d| !d.files.is_empty())
        {
            return Some(d);
        }
        let code = self.0.get_item(&old_draft_key(lang)).ok().flatten()?;
        Some(Draft::single(source_file, &code))
    }

    pub fn set(&self, lang: &str, draft: &Draft) {
        if let Ok(json) = serde_json::to_string(draft) {
            let _ = self.0.set_item(&draft_key(lang), &json);
        }
    }

    pub fn last_language(&self) -> Option<String> {
        self.0.get_item(LAST_LANG).ok().flatten()
    }

    pub fn set_last_language(&self, lang: &str) {
        let _ = self.0.set_item(LAST_LANG, lang);
    }
}
