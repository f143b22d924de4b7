//! Share slugs: 11 characters of `[A-Za-z0-9]` drawn from the operating system's CSPRNG
//! (about 65 bits), so that links can be neither guessed nor enumerated.

use crate::model::share::SLUG_LEN;
use rand::rngs::OsRng;
use rand::TryRngCore;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh random slug.
pub fn new_slug() -> String {
    let mut slug = String::with_capacity(SLUG_LEN);
    let mut buf = [0u8; 32];
    while slug.len() < SLUG_LEN {
        if OsRng.try_fill_bytes(&mut buf).is_err() {
            // The OS refused randomness (it practically never does): the thread's
            // generator, itself a CSPRNG seeded from the OS, takes over.
            rand::Rng::fill(&mut rand::rng(), &mut buf[..]);
        }
        // Bytes of 248 and above are skipped, so that every character is equally likely
        // (248 = 4 x 62).
        for b in buf.iter().filter(|b| **b < 248) {
            if slug.len() == SLUG_LEN {
                break;
            }
            slug.push(ALPHABET[(*b % 62) as usize] as char);
        }
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::share::is_slug;
    use std::collections::HashSet;

    #[test]
    fn a_thousand_slugs_are_valid_distinct_and_not_sequential() {
        let slugs: Vec<String> = (0..1000).map(|_| new_slug()).collect();
        assert!(slugs.iter().all(|s| is_slug(s)), "{slugs:?}");
        let distinct: HashSet<&String> = slugs.iter().collect();
        assert_eq!(distinct.len(), 1000);
        // Consecutive slugs share no more than chance: on average about 11/62 of their
        // positions agree; sequential ids would agree on nearly all of them.
        let same: usize = slugs
            .windows(2)
            .map(|w| {
                w[0].bytes()
                    .zip(w[1].bytes())
                    .filter(|(a, b)| a == b)
                    .count()
            })
            .sum();
        assert!(
            same < 999 * 2,
            "consecutive slugs agree on {same} positions"
        );
        // Every position uses the whole alphabet, not a counter's few digits.
        for pos in 0..SLUG_LEN {
            let chars: HashSet<u8> = slugs.iter().map(|s| s.as_bytes()[pos]).collect();
            assert!(
                chars.len() > 50,
                "position {pos} uses {} characters",
                chars.len()
            );
        }
        // Sorted in the order they were made, they are not in order.
        let mut sorted = slugs.clone();
        sorted.sort();
        assert_ne!(sorted, slugs);
    }
}
