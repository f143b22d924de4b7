//! Drafts in localStorage: one per language, and the language last used.

use web_sys::Storage;

const LAST_LANG: &str = "own-ide:language";

fn draft_key(lang: &str) -> String {
    format!("own-ide:draft:{lang}")
}

/// The browser's localStorage; a browser that refuses it simply keeps no drafts, so
/// every write here ignores failure.
pub struct Drafts(Storage);

impl Drafts {
    pub fn open() -> Option<Drafts> {
        web_sys::window()?.local_storage().ok()?.map(Drafts)
    }

    pub fn get(&self, lang: &str) -> Option<String> {
        self.0.get_item(&draft_key(lang)).ok().flatten()
    }

    pub fn set(&self, lang: &str, doc: &str) {
        let _ = self.0.set_item(&draft_key(lang), doc);
    }

    pub fn last_language(&self) -> Option<String> {
        self.0.get_item(LAST_LANG).ok().flatten()
    }

    pub fn set_last_language(&self, lang: &str) {
        let _ = self.0.set_item(LAST_LANG, lang);
    }
}
