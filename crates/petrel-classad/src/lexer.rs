//! The tokenizer, following HTCondor's lexer token for token (including its
//! quirks: `-5` is a negative literal unless it follows a value, adjacent
//! string literals are joined, `0x1F` and `017` read as decimal prefixes).

use crate::error::{Error, Position};

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Real(f64),
    Bool(bool),
    Str(String),
    Undefined,
    Error,
    Ident(String),
    Dot,
    Star,
    Slash,
    Percent,
    Plus,
    Minus,
    BitAnd,
    BitOr,
    BitNot,
    BitXor,
    Shl,
    Shr,
    Ushr,
    And,
    Or,
    Not,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    MetaEq,
    MetaNe,
    Assign,
    Question,
    Elvis,
    Colon,
    Semi,
    Comma,
    LBox,
    RBox,
    LParen,
    RParen,
    LBrace,
    RBrace,
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Int(i) => format!("integer {i}"),
            Tok::Real(r) => format!("real {r}"),
            Tok::Bool(b) => format!("boolean {b}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Undefined => "undefined".into(),
            Tok::Error => "error".into(),
            Tok::Ident(s) => format!("identifier {s}"),
            Tok::End => "end of input".into(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Dot => ".",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::BitAnd => "&",
            Tok::BitOr => "|",
            Tok::BitNot => "~",
            Tok::BitXor => "^",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::Ushr => ">>>",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::MetaEq => "=?=",
            Tok::MetaNe => "=!=",
            Tok::Assign => "=",
            Tok::Question => "?",
            Tok::Elvis => "?:",
            Tok::Colon => ":",
            Tok::Semi => ";",
            Tok::Comma => ",",
            Tok::LBox => "[",
            Tok::RBox => "]",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            _ => "?",
        }
    }

    /// Tokens after which `-` is the binary operator rather than a sign.
    fn ends_value(&self) -> bool {
        matches!(
            self,
            Tok::Int(_)
                | Tok::Real(_)
                | Tok::Bool(_)
                | Tok::Str(_)
                | Tok::Undefined
                | Tok::Error
                | Tok::Ident(_)
                | Tok::Dot
                | Tok::RBox
                | Tok::RParen
                | Tok::RBrace
        )
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) at: usize,
}

/// Line and column of a byte offset.
pub(crate) fn position(src: &str, at: usize) -> Position {
    let at = at.min(src.len());
    let before = &src.as_bytes()[..at];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Position { line, column }
}

/// Tokenizer over a string.
pub(crate) struct Lexer<'s> {
    src: &'s str,
    b: &'s [u8],
    i: usize,
    last: Tok,
    /// Old-syntax string rules: a backslash only escapes a quote.
    pub(crate) old_strings: bool,
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(src: &'s str) -> Lexer<'s> {
        Lexer {
            src,
            b: src.as_bytes(),
            i: 0,
            last: Tok::End,
            old_strings: false,
        }
    }

    fn peekc(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }

    fn err(&self, at: usize, expected: &str) -> Error {
        let found: String = self.src.get(at..).unwrap_or("").chars().take(12).collect();
        Error::Parse {
            pos: position(self.src, at),
            expected: expected.to_string(),
            found: if found.is_empty() {
                "end of input".into()
            } else {
                format!("{found:?}")
            },
        }
    }

    /// Skip blanks and comments.
    fn skip(&mut self) -> Result<(), Error> {
        loop {
            let c = self.peekc(0);
            if c.is_ascii_whitespace() {
                self.i += 1;
            } else if c == b'/' && self.peekc(1) == b'/' {
                while self.i < self.b.len() && self.b[self.i] != b'\n' {
                    self.i += 1;
                }
            } else if c == b'/' && self.peekc(1) == b'*' {
                let start = self.i;
                self.i += 2;
                loop {
                    if self.i + 1 >= self.b.len() {
                        return Err(self.err(start, "the end of a /* comment */"));
                    }
                    if self.b[self.i] == b'*' && self.b[self.i + 1] == b'/' {
                        self.i += 2;
                        break;
                    }
                    self.i += 1;
                }
            } else {
                return Ok(());
            }
        }
    }

    /// The next token.
    pub(crate) fn next_token(&mut self) -> Result<Token, Error> {
        self.skip()?;
        let at = self.i;
        let c = self.peekc(0);
        let tok = if self.i >= self.b.len() || c == 0 {
            Tok::End
        } else if (c == b'-' && !self.last.ends_value()) || c.is_ascii_digit() || c == b'.' {
            // A '-' that cannot be a binary minus may start a negative literal.
            self.number()?
        } else if c.is_ascii_alphabetic() || c == b'_' {
            self.word()
        } else if c == b'"' || c == b'\'' {
            self.string(c)?
        } else {
            self.punct()?
        };
        self.last = tok.clone();
        Ok(Token { tok, at })
    }

    fn word(&mut self) -> Tok {
        let start = self.i;
        while self.peekc(0).is_ascii_alphanumeric() || self.peekc(0) == b'_' {
            self.i += 1;
        }
        let w = &self.src[start..self.i];
        if w.eq_ignore_ascii_case("true") {
            Tok::Bool(true)
        } else if w.eq_ignore_ascii_case("false") {
            Tok::Bool(false)
        } else if w.eq_ignore_ascii_case("undefined") {
            Tok::Undefined
        } else if w.eq_ignore_ascii_case("error") {
            Tok::Error
        } else if w.eq_ignore_ascii_case("is") {
            Tok::MetaEq
        } else if w.eq_ignore_ascii_case("isnt") {
            Tok::MetaNe
        } else {
            Tok::Ident(w.to_string())
        }
    }

    fn number(&mut self) -> Result<Tok, Error> {
        let start = self.i;
        #[derive(PartialEq)]
        enum Kind {
            None,
            Int,
            Real,
        }
        let mut kind = Kind::None;
        let mut och = self.peekc(0);
        self.i += 1;
        if och == b'-' {
            if self.peekc(0).is_ascii_digit() {
                och = self.peekc(0);
                self.i += 1;
            } else if self.peekc(0) == b'.' && self.peekc(1).is_ascii_digit() {
                // a negative real like -.5
            } else {
                return Ok(Tok::Minus);
            }
        }
        if och == b'0' {
            if self.peekc(0).eq_ignore_ascii_case(&b'x') {
                kind = Kind::Int;
                self.i += 1;
                if !self.peekc(0).is_ascii_hexdigit() {
                    return Err(self.err(start, "hexadecimal digits"));
                }
                while self.peekc(0).is_ascii_hexdigit() {
                    self.i += 1;
                }
            } else {
                kind = Kind::Int;
                let mut bad_octal = false;
                while self.peekc(0).is_ascii_digit() {
                    if self.peekc(0) > b'7' {
                        bad_octal = true;
                    }
                    self.i += 1;
                }
                if self.peekc(0) == b'.' || self.peekc(0).eq_ignore_ascii_case(&b'e') {
                    kind = Kind::Real;
                } else if bad_octal {
                    return Err(self.err(start, "an octal or real number"));
                }
            }
        } else if och.is_ascii_digit() {
            while self.peekc(0).is_ascii_digit() {
                self.i += 1;
            }
            kind = if self.peekc(0) == b'.' || self.peekc(0).eq_ignore_ascii_case(&b'e') {
                Kind::Real
            } else {
                Kind::Int
            };
        }
        if och == b'.' || self.peekc(0) == b'.' {
            if och != b'.' {
                self.i += 1;
            }
            if self.peekc(0).is_ascii_digit() {
                kind = Kind::Real;
                while self.peekc(0).is_ascii_digit() {
                    self.i += 1;
                }
            } else {
                if kind != Kind::None {
                    return Err(self.err(start, "digits after the decimal point"));
                }
                return Ok(Tok::Dot);
            }
        }
        if kind == Kind::Real && self.peekc(0).eq_ignore_ascii_case(&b'e') {
            self.i += 1;
            if self.peekc(0) == b'+' || self.peekc(0) == b'-' {
                self.i += 1;
            }
            if !self.peekc(0).is_ascii_digit() {
                return Err(self.err(start, "exponent digits"));
            }
            while self.peekc(0).is_ascii_digit() {
                self.i += 1;
            }
        }
        let text = &self.src[start..self.i];
        if kind == Kind::Int {
            // HTCondor reads the text as a decimal prefix; out of range gives 0.
            let bytes = text.as_bytes();
            let mut end = usize::from(bytes.first() == Some(&b'-'));
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            Ok(Tok::Int(text[..end].parse::<i64>().unwrap_or(0)))
        } else {
            Ok(Tok::Real(text.parse::<f64>().unwrap_or(0.0)))
        }
    }

    fn string(&mut self, delim: u8) -> Result<Tok, Error> {
        let start = self.i;
        self.i += 1;
        let mut raw: Vec<u8> = Vec::new();
        loop {
            let seg_start = self.i;
            if self.old_strings {
                loop {
                    if self.i >= self.b.len() {
                        return Err(self.err(start, "a closing quote"));
                    }
                    let c = self.b[self.i];
                    if c == delim {
                        let after = self.peekc(1);
                        if raw.last() == Some(&b'\\') && after != 0 && after != b'\n' {
                            raw.pop();
                            raw.push(delim);
                            self.i += 1;
                            continue;
                        }
                        self.i += 1;
                        break;
                    }
                    raw.push(c);
                    self.i += 1;
                }
                let _ = seg_start;
                return Ok(self.finish_string(delim, String::from_utf8_lossy(&raw).into_owned()));
            }
            let mut odd = false;
            loop {
                if self.i >= self.b.len() || self.b[self.i] == 0 {
                    return Err(self.err(start, "a closing quote"));
                }
                let c = self.b[self.i];
                if c == delim && !odd {
                    break;
                }
                odd = c == b'\\' && !odd;
                self.i += 1;
            }
            raw.extend_from_slice(&self.b[seg_start..self.i]);
            self.i += 1;
            // Adjacent literals with the same quote are joined.
            let mut j = self.i;
            while j < self.b.len() && self.b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < self.b.len() && self.b[j] == delim {
                self.i = j + 1;
                continue;
            }
            break;
        }
        let text = convert_escapes(&raw).ok_or_else(|| self.err(start, "a string without \\0"))?;
        Ok(self.finish_string(delim, text))
    }

    fn finish_string(&self, delim: u8, text: String) -> Tok {
        if delim == b'"' {
            Tok::Str(text)
        } else {
            Tok::Ident(text)
        }
    }

    fn punct(&mut self) -> Result<Tok, Error> {
        let start = self.i;
        let c = self.peekc(0);
        self.i += 1;
        let t = match c {
            b'*' => Tok::Star,
            b'/' => Tok::Slash,
            b'%' => Tok::Percent,
            b'+' => Tok::Plus,
            b'-' => Tok::Minus,
            b'~' => Tok::BitNot,
            b'^' => Tok::BitXor,
            b':' => Tok::Colon,
            b';' => Tok::Semi,
            b',' => Tok::Comma,
            b'[' => Tok::LBox,
            b']' => Tok::RBox,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b'.' => Tok::Dot,
            b'?' => {
                let mut j = self.i;
                while j < self.b.len() && self.b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < self.b.len() && self.b[j] == b':' {
                    self.i = j + 1;
                    Tok::Elvis
                } else {
                    Tok::Question
                }
            }
            b'&' => self.two(b'&', Tok::And, Tok::BitAnd),
            b'|' => self.two(b'|', Tok::Or, Tok::BitOr),
            b'<' => match self.peekc(0) {
                b'=' => self.bump(Tok::Le),
                b'<' => self.bump(Tok::Shl),
                _ => Tok::Lt,
            },
            b'>' => match self.peekc(0) {
                b'=' => self.bump(Tok::Ge),
                b'>' => {
                    self.i += 1;
                    if self.peekc(0) == b'>' {
                        self.bump(Tok::Ushr)
                    } else {
                        Tok::Shr
                    }
                }
                _ => Tok::Gt,
            },
            b'=' => match self.peekc(0) {
                b'=' => self.bump(Tok::Eq),
                b'?' => {
                    if self.peekc(1) == b'=' {
                        self.i += 2;
                        Tok::MetaEq
                    } else {
                        return Err(self.err(start, "'=?='"));
                    }
                }
                b'!' if self.peekc(1) == b'=' => {
                    self.i += 2;
                    Tok::MetaNe
                }
                _ => Tok::Assign,
            },
            b'!' => {
                if self.peekc(0) == b'=' {
                    self.bump(Tok::Ne)
                } else {
                    Tok::Not
                }
            }
            _ => return Err(self.err(start, "a token")),
        };
        Ok(t)
    }

    fn two(&mut self, second: u8, both: Tok, one: Tok) -> Tok {
        if self.peekc(0) == second {
            self.i += 1;
            both
        } else {
            one
        }
    }

    fn bump(&mut self, t: Tok) -> Tok {
        self.i += 1;
        t
    }
}

/// Resolve backslash escapes as HTCondor does; `None` if the result holds NUL.
pub(crate) fn convert_escapes(raw: &[u8]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    let n = raw.len();
    while i < n {
        let mut ch = raw[i];
        if ch == b'\\' && i < n - 1 {
            i += 1;
            ch = raw[i];
            ch = match ch {
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 11,
                b'0'..=b'7' => {
                    let mut number = u32::from(ch - b'0');
                    if i + 1 < n && (b'0'..=b'7').contains(&raw[i + 1]) {
                        i += 1;
                        number = (number << 3) + u32::from(raw[i] - b'0');
                        if number < 0x20 && i + 1 < n && (b'0'..=b'7').contains(&raw[i + 1]) {
                            i += 1;
                            number = (number << 3) + u32::from(raw[i] - b'0');
                        }
                    }
                    let b = (number & 0xff) as u8;
                    if b == 0 {
                        return None;
                    }
                    b
                }
                other => other,
            };
        }
        out.push(ch);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut l = Lexer::new(s);
        let mut out = Vec::new();
        loop {
            match l.next_token() {
                Ok(Token { tok: Tok::End, .. }) => return out,
                Ok(t) => out.push(t.tok),
                Err(e) => panic!("{s}: {e}"),
            }
        }
    }

    #[test]
    fn numbers_follow_htcondor() {
        assert_eq!(toks("-5"), vec![Tok::Int(-5)]);
        assert_eq!(toks("1 -5"), vec![Tok::Int(1), Tok::Minus, Tok::Int(5)]);
        assert_eq!(toks("0x1F"), vec![Tok::Int(0)]);
        assert_eq!(toks("017"), vec![Tok::Int(17)]);
        assert_eq!(toks("99999999999999999999"), vec![Tok::Int(0)]);
        assert_eq!(toks(".5e1"), vec![Tok::Real(5.0)]);
        assert!(Lexer::new("1.").next_token().is_err());
        assert!(Lexer::new("09").next_token().is_err());
    }

    #[test]
    fn strings_and_operators() {
        assert_eq!(toks("\"a\" \"b\""), vec![Tok::Str("ab".into())]);
        assert_eq!(toks("'x y'"), vec![Tok::Ident("x y".into())]);
        assert_eq!(
            toks("a =?= b is c"),
            vec![
                Tok::Ident("a".into()),
                Tok::MetaEq,
                Tok::Ident("b".into()),
                Tok::MetaEq,
                Tok::Ident("c".into())
            ]
        );
        assert_eq!(
            toks("a ? : b"),
            vec![Tok::Ident("a".into()), Tok::Elvis, Tok::Ident("b".into())]
        );
        assert_eq!(
            toks("x >>> 1 /* c */ // d"),
            vec![Tok::Ident("x".into()), Tok::Ushr, Tok::Int(1)]
        );
        assert!(convert_escapes(b"a\\0b").is_none());
        assert_eq!(convert_escapes(b"\\101\\n").as_deref(), Some("A\n"));
    }
}
