//! A small syntax highlighter for the four languages, so that shared code is coloured
//! on the server (the page needs no JavaScript). It knows comments, strings, numbers,
//! keywords and preprocessor lines: enough to read code, not a parser.

/// What a piece of code is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Keyword,
    String,
    Comment,
    Number,
    /// A C/C++ preprocessor line, a Python or Java decorator/annotation.
    Meta,
}

impl Kind {
    /// The CSS class of the span (`None`: no span).
    pub fn class(self) -> Option<&'static str> {
        match self {
            Kind::Plain => None,
            Kind::Keyword => Some("tok-keyword"),
            Kind::String => Some("tok-string"),
            Kind::Comment => Some("tok-comment"),
            Kind::Number => Some("tok-number"),
            Kind::Meta => Some("tok-meta"),
        }
    }
}

struct Syntax {
    line_comment: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    /// Quote sequences that open a string closed by the same sequence, longest first.
    quotes: &'static [&'static str],
    /// Quotes whose strings may span lines (the rest end at the end of the line).
    multiline: &'static [&'static str],
    keywords: &'static [&'static str],
    /// A line starting with `#` is a preprocessor line.
    preprocessor: bool,
    /// `@name` is an annotation or decorator.
    at_meta: bool,
}

const PYTHON: Syntax = Syntax {
    line_comment: &["#"],
    block_comment: None,
    quotes: &["\"\"\"", "'''", "\"", "'"],
    multiline: &["\"\"\"", "'''"],
    keywords: &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "match", "case", "nonlocal", "not", "or", "pass",
        "raise", "return", "try", "while", "with", "yield", "print", "input", "len", "range",
        "self",
    ],
    preprocessor: false,
    at_meta: true,
};

const CPP: Syntax = Syntax {
    line_comment: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &["\"", "'"],
    multiline: &[],
    keywords: &[
        "auto",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "class",
        "const",
        "constexpr",
        "continue",
        "default",
        "delete",
        "do",
        "double",
        "else",
        "enum",
        "explicit",
        "extern",
        "false",
        "float",
        "for",
        "friend",
        "if",
        "inline",
        "int",
        "long",
        "namespace",
        "new",
        "nullptr",
        "operator",
        "private",
        "protected",
        "public",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "template",
        "this",
        "throw",
        "true",
        "try",
        "typedef",
        "typename",
        "unsigned",
        "using",
        "virtual",
        "void",
        "volatile",
        "while",
        "std",
        "size_t",
        "string",
        "vector",
    ],
    preprocessor: true,
    at_meta: false,
};

const JAVA: Syntax = Syntax {
    line_comment: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &["\"\"\"", "\"", "'"],
    multiline: &["\"\"\""],
    keywords: &[
        "abstract",
        "boolean",
        "break",
        "byte",
        "case",
        "catch",
        "char",
        "class",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extends",
        "final",
        "finally",
        "float",
        "for",
        "if",
        "implements",
        "import",
        "instanceof",
        "int",
        "interface",
        "long",
        "new",
        "null",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "short",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "throws",
        "true",
        "false",
        "try",
        "var",
        "void",
        "while",
        "record",
        "String",
    ],
    preprocessor: false,
    at_meta: true,
};

const JAVASCRIPT: Syntax = Syntax {
    line_comment: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &["`", "\"", "'"],
    multiline: &["`"],
    keywords: &[
        "async",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "default",
        "delete",
        "do",
        "else",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "let",
        "new",
        "null",
        "of",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "undefined",
        "var",
        "void",
        "while",
        "yield",
        "require",
        "console",
    ],
    preprocessor: false,
    at_meta: false,
};

fn syntax(language: &str) -> Option<&'static Syntax> {
    match language {
        "python" => Some(&PYTHON),
        "cpp" => Some(&CPP),
        "java" => Some(&JAVA),
        "javascript" => Some(&JAVASCRIPT),
        _ => None,
    }
}

/// The code as lines of classified pieces (no newline characters in them). Unknown
/// languages come back plain.
pub fn highlight(language: &str, code: &str) -> Vec<Vec<(Kind, String)>> {
    let tokens = match syntax(language) {
        Some(s) => tokenize(s, code),
        None => vec![(Kind::Plain, code.to_string())],
    };
    let mut lines: Vec<Vec<(Kind, String)>> = vec![Vec::new()];
    for (kind, text) in tokens {
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                lines.push(Vec::new());
            }
            if part.is_empty() {
                continue;
            }
            let line = lines.last_mut().expect("never empty");
            match line.last_mut() {
                Some((k, t)) if *k == kind => t.push_str(part),
                _ => line.push((kind, part.to_string())),
            }
        }
    }
    // A final newline does not make an empty last line.
    if code.ends_with('\n') && lines.len() > 1 {
        lines.pop();
    }
    lines
}

fn tokenize(s: &Syntax, code: &str) -> Vec<(Kind, String)> {
    let mut out: Vec<(Kind, String)> = Vec::new();
    let mut push = |kind: Kind, text: &str| match out.last_mut() {
        Some((k, t)) if *k == kind => t.push_str(text),
        _ => out.push((kind, text.to_string())),
    };
    let mut i = 0;
    let mut line_start = true;
    while i < code.len() {
        let rest = &code[i..];
        let c = rest.chars().next().unwrap_or(' ');
        let len = if let Some(n) = s
            .line_comment
            .iter()
            .find(|m| rest.starts_with(**m))
            .map(|_| rest.find('\n').unwrap_or(rest.len()))
        {
            push(Kind::Comment, &rest[..n]);
            n
        } else if let Some((open, close)) = s.block_comment.filter(|(o, _)| rest.starts_with(o)) {
            let n = rest[open.len()..]
                .find(close)
                .map(|e| open.len() + e + close.len())
                .unwrap_or(rest.len());
            push(Kind::Comment, &rest[..n]);
            n
        } else if s.preprocessor && line_start && c == '#' {
            let n = rest.find('\n').unwrap_or(rest.len());
            push(Kind::Meta, &rest[..n]);
            n
        } else if let Some(q) = s.quotes.iter().find(|q| rest.starts_with(**q)) {
            let n = string_len(rest, q, s.multiline.contains(q));
            push(Kind::String, &rest[..n]);
            n
        } else if c.is_ascii_digit() {
            let n = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.' || ch == '_'))
                .unwrap_or(rest.len());
            push(Kind::Number, &rest[..n]);
            n
        } else if c.is_alphabetic() || c == '_' || c == '$' || (c == '@' && s.at_meta) {
            let n = c.len_utf8()
                + rest[c.len_utf8()..]
                    .find(|ch: char| {
                        !(ch.is_alphanumeric() || ch == '_' || ch == '$' || ch == '.' && c == '@')
                    })
                    .unwrap_or(rest.len() - c.len_utf8());
            let word = &rest[..n];
            let kind = if c == '@' {
                Kind::Meta
            } else if s.keywords.contains(&word) {
                Kind::Keyword
            } else {
                Kind::Plain
            };
            push(kind, word);
            n
        } else {
            push(Kind::Plain, &rest[..c.len_utf8()]);
            c.len_utf8()
        };
        let taken = &code[i..i + len];
        // Only blanks since the last newline: a `#` here starts a preprocessor line.
        line_start = match taken.rfind('\n') {
            Some(at) => taken[at + 1..].trim().is_empty(),
            None => line_start && taken.trim().is_empty(),
        };
        i += len;
    }
    out
}

/// The length in bytes of the string starting at `rest` with quote `q`: up to and with
/// its closing quote (a backslash escapes the next character), or to the end of the line
/// (or of the code, for strings that may span lines) when it is not closed.
fn string_len(rest: &str, q: &str, multiline: bool) -> usize {
    let mut chars = rest.char_indices().skip(q.chars().count()).peekable();
    while let Some((at, ch)) = chars.next() {
        if ch == '\\' {
            chars.next();
        } else if rest[at..].starts_with(q) {
            return at + q.len();
        } else if ch == '\n' && !multiline {
            return at;
        }
    }
    rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(language: &str, code: &str) -> Vec<Vec<(Kind, String)>> {
        highlight(language, code)
    }

    #[test]
    fn python_keywords_strings_comments_numbers() {
        let l = classes(
            "python",
            "def f(x):  # doubles\n    return x * 2 + len('a#b')\n",
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[0][0], (Kind::Keyword, "def".into()));
        assert!(l[0].contains(&(Kind::Comment, "# doubles".into())));
        assert!(l[1].contains(&(Kind::String, "'a#b'".into())));
        assert!(l[1].contains(&(Kind::Number, "2".into())));
        assert!(l[1].contains(&(Kind::Keyword, "return".into())));
    }

    #[test]
    fn strings_and_comments_across_lines_are_split_per_line() {
        let l = classes("javascript", "/* a\nb */ let s = `x\ny`;");
        assert_eq!(l[0], vec![(Kind::Comment, "/* a".into())]);
        assert_eq!(l[1][0], (Kind::Comment, "b */".into()));
        assert!(l[1].contains(&(Kind::String, "`x".into())));
        assert_eq!(l[2][0], (Kind::String, "y`".into()));
        // A quote that is not closed ends at the end of its line.
        let l = classes("cpp", "char c = '\\'';\nstd::string s = \"open\nint x;");
        assert!(l[0].contains(&(Kind::String, "'\\''".into())));
        assert!(l[1].contains(&(Kind::String, "\"open".into())));
        assert!(l[2].contains(&(Kind::Keyword, "int".into())));
    }

    #[test]
    fn preprocessor_lines_and_annotations() {
        let l = classes("cpp", "#include <iostream>\nint a = b # c;");
        assert_eq!(l[0], vec![(Kind::Meta, "#include <iostream>".into())]);
        assert!(!l[1].iter().any(|(k, _)| *k == Kind::Meta));
        let l = classes(
            "java",
            "@Override\npublic String toString() { return \"x\"; }",
        );
        assert_eq!(l[0], vec![(Kind::Meta, "@Override".into())]);
    }

    #[test]
    fn text_comes_back_unchanged_and_unknown_languages_are_plain() {
        for (lang, code) in [
            ("python", "s = '''a\n'b'\n'''\nprint(s) # é ünïcode\n"),
            ("java", "class A { String s = \"\"\"\n x\n \"\"\"; }"),
            ("cobol", "DISPLAY 'HI'.\n"),
        ] {
            let back: Vec<String> = highlight(lang, code)
                .iter()
                .map(|l| l.iter().map(|(_, t)| t.as_str()).collect())
                .collect();
            assert_eq!(
                back.join("\n") + if code.ends_with('\n') { "\n" } else { "" },
                code
            );
        }
        assert_eq!(classes("cobol", "x")[0], vec![(Kind::Plain, "x".into())]);
    }
}
