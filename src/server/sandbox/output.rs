//! Collects one output stream of a run: caps its size and turns bytes into text without
//! splitting a UTF-8 character across chunks.

/// One stream (stdout, stderr or compile output) with a byte cap.
#[derive(Default)]
pub struct Capture {
    text: String,
    pending: Vec<u8>,
    cap: usize,
    /// Bytes dropped because the cap was reached.
    pub overflowed: bool,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Capture {
            cap,
            ..Default::default()
        }
    }

    /// Appends bytes and returns the text that became complete (for live streaming).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        if self.overflowed {
            return String::new();
        }
        self.pending.extend_from_slice(bytes);
        // Keep an incomplete trailing UTF-8 sequence for the next chunk.
        let valid_up_to = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid_up_to);
        let mut chunk = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        let room = self.cap.saturating_sub(self.text.len());
        if chunk.len() > room {
            let mut cut = room;
            while !chunk.is_char_boundary(cut) {
                cut -= 1;
            }
            chunk.truncate(cut);
            self.overflowed = true;
            self.pending.clear();
        }
        self.text.push_str(&chunk);
        chunk
    }

    /// The text collected so far, with any dangling partial character replaced.
    pub fn finish(mut self) -> String {
        if !self.pending.is_empty() && !self.overflowed {
            self.text.push_str(&String::from_utf8_lossy(&self.pending));
        }
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_are_joined() {
        let mut c = Capture::new(100);
        let bytes = "héllo".as_bytes();
        assert_eq!(c.push(&bytes[..2]), "h");
        assert_eq!(c.push(&bytes[2..]), "éllo");
        assert_eq!(c.finish(), "héllo");
    }

    #[test]
    fn cap_is_enforced_on_a_char_boundary() {
        let mut c = Capture::new(4);
        c.push("abé".as_bytes());
        c.push(b"xyz");
        assert!(c.overflowed);
        assert_eq!(c.finish(), "abé");
        let mut c = Capture::new(3);
        c.push("abé".as_bytes());
        assert_eq!(c.finish(), "ab");
    }
}
