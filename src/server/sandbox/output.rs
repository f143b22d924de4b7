//! Collects one output stream of a run: caps its size and turns bytes into text without
//! splitting a UTF-8 character across chunks; and separates the engine's trailer (what
//! the supervisor reports after the program) from what the program wrote.

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

/// The byte that frames the engine's markers (ASCII record separator).
pub const MARK: u8 = 0x1e;

/// Largest trailer body kept; the rest of a runaway body is dropped from its middle.
const BODY_CAP: usize = 16 * 1024;

/// Splits one output stream into the program's bytes and the report the supervisor
/// appends after the program ended: `MARK nonce MARK body MARK nonce MARK`.
///
/// The nonce is random per run and never visible to the program, so the program cannot
/// write the marker: a `MARK` byte or a fake trailer it prints is passed on as output.
/// Bytes that could be the start of the marker are held back until the next chunk shows
/// whether they are (the marker may be split across chunks). Everything after the
/// trailer (say, from a background process) is dropped.
pub struct Splitter {
    marker: Vec<u8>,
    state: SplitState,
    /// Tail of the stream that is a proper prefix of the marker.
    held: Vec<u8>,
    /// Program bytes returned by the last `push`.
    out: Vec<u8>,
    body: Vec<u8>,
    /// Bytes of the chunk that ended the trailer, after it.
    after: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SplitState {
    Program,
    Body,
    Done,
}

impl Splitter {
    /// A splitter for the marker made of `nonce` (which must not contain `MARK`).
    pub fn new(nonce: &str) -> Self {
        debug_assert!(!nonce.as_bytes().contains(&MARK) && !nonce.is_empty());
        let mut marker = vec![MARK];
        marker.extend_from_slice(nonce.as_bytes());
        marker.push(MARK);
        Splitter {
            marker,
            state: SplitState::Program,
            held: Vec::new(),
            out: Vec::new(),
            body: Vec::new(),
            after: Vec::new(),
        }
    }

    /// Takes the next chunk of the stream and returns the program's bytes in it (possibly
    /// with bytes held back from earlier chunks).
    pub fn push<'a>(&'a mut self, bytes: &'a [u8]) -> &'a [u8] {
        match self.state {
            SplitState::Done => &[],
            SplitState::Body => {
                self.take_body(bytes);
                &[]
            }
            SplitState::Program => {
                if self.held.is_empty() && !bytes.contains(&MARK) {
                    return bytes;
                }
                let mut data = std::mem::take(&mut self.out);
                data.clear();
                data.append(&mut self.held);
                data.extend_from_slice(bytes);
                let m = self.marker.len();
                let mut program_end = data.len();
                let mut body_start = None;
                for i in (0..data.len()).filter(|&i| data[i] == MARK) {
                    let rest = &data[i..];
                    if rest.len() >= m {
                        if rest[..m] == self.marker[..] {
                            program_end = i;
                            body_start = Some(i + m);
                            break;
                        }
                    } else if self.marker.starts_with(rest) {
                        self.held.extend_from_slice(rest);
                        program_end = i;
                        break;
                    }
                }
                if let Some(start) = body_start {
                    self.state = SplitState::Body;
                    self.take_body(&data[start..]);
                }
                data.truncate(program_end);
                self.out = data;
                &self.out
            }
        }
    }

    fn take_body(&mut self, bytes: &[u8]) {
        let m = self.marker.len();
        let from = self.body.len().saturating_sub(m - 1);
        self.body.extend_from_slice(bytes);
        if let Some(p) = find(&self.body[from..], &self.marker) {
            self.after = self.body.split_off(from + p + m);
            self.body.truncate(from + p);
            self.state = SplitState::Done;
        } else if self.body.len() > BODY_CAP {
            // Keep the head (the exit code and the measures come first) and enough of
            // the end to recognise a marker split across chunks.
            let end = self.body.len() - (m - 1);
            self.body.drain(BODY_CAP / 2..end);
        }
    }

    /// The stream ended: returns the held-back bytes, which turned out to be the
    /// program's. A trailer that started but never ended is dropped.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// The bytes that came in the same chunk right after the trailer (the compile report
    /// is followed by the program's own output). Later chunks are not kept.
    pub fn take_after(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.after)
    }

    /// The trailer's body, once the whole trailer has been seen.
    pub fn trailer(&self) -> Option<&[u8]> {
        (self.state == SplitState::Done).then_some(&self.body[..])
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "0123456789abcdef";

    fn trailer(body: &str) -> Vec<u8> {
        format!("\x1e{NONCE}\x1e{body}\x1e{NONCE}\x1e").into_bytes()
    }

    /// Feeds `chunks` and returns (program bytes, trailer body).
    fn split(chunks: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut s = Splitter::new(NONCE);
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(s.push(c));
        }
        out.extend(s.finish());
        (out, s.trailer().map(<[u8]>::to_vec))
    }

    #[test]
    fn plain_output_passes_through_and_has_no_trailer() {
        assert_eq!(
            split(&[b"hello\n", b"world"]),
            (b"hello\nworld".to_vec(), None)
        );
    }

    #[test]
    fn the_trailer_is_cut_off_at_every_split_point() {
        let mut stream = b"out\x1e put\n".to_vec();
        stream.extend(trailer("0\n7672\n"));
        stream.extend_from_slice(b"late output of a background process");
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let (out, body) = split(&[&stream[..a], &stream[a..b], &stream[b..]]);
                assert_eq!(out, b"out\x1e put\n", "split at {a},{b}");
                assert_eq!(body.as_deref(), Some(&b"0\n7672\n"[..]), "split at {a},{b}");
            }
        }
        let one_by_one: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(split(&one_by_one).0, b"out\x1e put\n");
    }

    #[test]
    fn marks_and_fake_markers_are_program_output() {
        let fake = "a\x1e\x1eb\x1e0123456789abcdeX\x1e\x1ewrong\x1e0\n\x1e\x1e0123456789abcde";
        let (out, body) = split(&[fake.as_bytes()]);
        assert_eq!(out, fake.as_bytes());
        assert_eq!(body, None);
        let mut stream = fake.as_bytes().to_vec();
        stream.extend(trailer(""));
        for cut in 0..stream.len() {
            let (out, body) = split(&[&stream[..cut], &stream[cut..]]);
            assert_eq!(out, fake.as_bytes(), "split at {cut}");
            assert_eq!(body.as_deref(), Some(&b""[..]));
        }
    }

    #[test]
    fn an_unfinished_trailer_is_dropped_and_a_huge_body_is_bounded() {
        let mut stream = b"x".to_vec();
        stream.extend_from_slice(format!("\x1e{NONCE}\x1e1\n").as_bytes());
        assert_eq!(split(&[&stream]), (b"x".to_vec(), None));

        let mut s = Splitter::new(NONCE);
        s.push(format!("\x1e{NONCE}\x1e3\n").as_bytes());
        for _ in 0..100 {
            assert!(s.push(&[b'9'; 4096]).is_empty());
        }
        assert!(s.push(&trailer("")[..5]).is_empty());
        assert!(s.push(&trailer("")[5..]).is_empty());
        let body = s.trailer().unwrap();
        assert!(body.starts_with(b"3\n999") && body.len() <= BODY_CAP);
        assert!(s.push(b"after").is_empty());
    }

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

    #[test]
    fn bytes_after_the_trailer_in_its_chunk_are_kept_apart() {
        let mut s = Splitter::new(NONCE);
        let mut chunk = b"warning: x\n".to_vec();
        chunk.extend(trailer("0"));
        chunk.extend_from_slice(b"program says hi");
        assert_eq!(s.push(&chunk), b"warning: x\n");
        assert_eq!(s.trailer(), Some(&b"0"[..]));
        assert_eq!(s.take_after(), b"program says hi");
        // Split across chunks: the end marker in the second.
        let mut s = Splitter::new(NONCE);
        let t = trailer("1");
        let (a, b) = t.split_at(t.len() - 3);
        assert_eq!(s.push(a), b"");
        let mut rest = b.to_vec();
        rest.extend_from_slice(b"more");
        assert_eq!(s.push(&rest), b"");
        assert_eq!(s.trailer(), Some(&b"1"[..]));
        assert_eq!(s.take_after(), b"more");
    }
}
