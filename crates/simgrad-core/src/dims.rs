//! Array dimensions: fixed numbers, named sizes, and small expressions of both.
//!
//! A dim is written as a number (`100`), a size name (`"n"`), or an expression of names and
//! non-negative integers with `+`, `-`, `*` and parentheses (`"3*s"`, `"in + s"`). Names are bound
//! by `size` arguments or by the shapes of arrays at call time ([`SizeBindings`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A parsed dimension expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimExpr {
    /// A fixed extent.
    Fixed(i64),
    /// A named size.
    Name(String),
    /// `a + b`.
    Add(Box<DimExpr>, Box<DimExpr>),
    /// `a - b`.
    Sub(Box<DimExpr>, Box<DimExpr>),
    /// `a * b`.
    Mul(Box<DimExpr>, Box<DimExpr>),
}

/// Values of named sizes for one call.
pub type SizeBindings = BTreeMap<String, i64>;

/// The most tokens a dim may have. Real dims are short (`3*s + in_f` is 5 tokens); the bound
/// keeps the recursion of the parser, `Display`, `eval` and `Drop` on a hostile manifest's dims
/// (100,000 nested parentheses, a million-term sum) far from the end of the stack, which no
/// panic boundary can catch.
const MAX_DIM_TOKENS: usize = 512;

impl DimExpr {
    /// Parses `text` (a name or an expression of at most 512 tokens).
    pub fn parse(text: &str) -> Result<DimExpr, String> {
        let tokens = tokenize(text)?;
        if tokens.len() > MAX_DIM_TOKENS {
            let start: String = text.chars().take(32).collect();
            return Err(format!(
                "dim `{start}…` has {} tokens; a dim has at most {MAX_DIM_TOKENS}",
                tokens.len()
            ));
        }
        let mut p = Parser { tokens, pos: 0 };
        let e = p.sum()?;
        if p.pos != p.tokens.len() {
            return Err(format!("unexpected `{}` in dim `{text}`", p.tokens[p.pos]));
        }
        Ok(e)
    }

    /// The bare size name when the dim is just a name.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            DimExpr::Name(n) => Some(n),
            _ => None,
        }
    }

    /// Every name the expression uses, in order of appearance.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            DimExpr::Fixed(_) => {}
            DimExpr::Name(n) => out.push(n),
            DimExpr::Add(a, b) | DimExpr::Sub(a, b) | DimExpr::Mul(a, b) => {
                a.collect_names(out);
                b.collect_names(out);
            }
        }
    }

    /// Evaluates the expression; `None` when a name is unbound or the arithmetic overflows.
    pub fn eval(&self, sizes: &SizeBindings) -> Option<i64> {
        self.eval_with(&|n| sizes.get(n).copied())
    }

    /// Evaluates the expression, looking names up with `lookup` (no allocation).
    pub fn eval_with(&self, lookup: &dyn Fn(&str) -> Option<i64>) -> Option<i64> {
        match self {
            DimExpr::Fixed(v) => Some(*v),
            DimExpr::Name(n) => lookup(n),
            DimExpr::Add(a, b) => a.eval_with(lookup)?.checked_add(b.eval_with(lookup)?),
            DimExpr::Sub(a, b) => a.eval_with(lookup)?.checked_sub(b.eval_with(lookup)?),
            DimExpr::Mul(a, b) => a.eval_with(lookup)?.checked_mul(b.eval_with(lookup)?),
        }
    }
}

impl fmt::Display for DimExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn prec(e: &DimExpr) -> u8 {
            match e {
                DimExpr::Add(..) | DimExpr::Sub(..) => 1,
                DimExpr::Mul(..) => 2,
                _ => 3,
            }
        }
        fn side(f: &mut fmt::Formatter<'_>, e: &DimExpr, min: u8) -> fmt::Result {
            if prec(e) < min {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            DimExpr::Fixed(v) => write!(f, "{v}"),
            DimExpr::Name(n) => f.write_str(n),
            DimExpr::Add(a, b) => {
                side(f, a, 1)?;
                f.write_str("+")?;
                side(f, b, 2)
            }
            DimExpr::Sub(a, b) => {
                side(f, a, 1)?;
                f.write_str("-")?;
                side(f, b, 2)
            }
            DimExpr::Mul(a, b) => {
                side(f, a, 2)?;
                f.write_str("*")?;
                side(f, b, 3)
            }
        }
    }
}

impl Serialize for DimExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DimExpr::Fixed(v) => s.serialize_i64(*v),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for DimExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(v) if v >= 0 => Ok(DimExpr::Fixed(v)),
            Raw::Int(v) => Err(serde::de::Error::custom(format!(
                "a dim must not be negative, got {v}"
            ))),
            Raw::Text(t) => DimExpr::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if "+-*()".contains(c) {
            out.push(c.to_string());
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut t = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    t.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(t);
        } else {
            return Err(format!("unexpected character `{c}` in dim `{text}`"));
        }
    }
    if out.is_empty() {
        return Err("empty dim".to_string());
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<String>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn sum(&mut self) -> Result<DimExpr, String> {
        let mut lhs = self.product()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            let add = op == "+";
            self.pos += 1;
            let rhs = self.product()?;
            lhs = if add {
                DimExpr::Add(Box::new(lhs), Box::new(rhs))
            } else {
                DimExpr::Sub(Box::new(lhs), Box::new(rhs))
            };
        }
        Ok(lhs)
    }

    fn product(&mut self) -> Result<DimExpr, String> {
        let mut lhs = self.atom()?;
        while self.peek() == Some("*") {
            self.pos += 1;
            let rhs = self.atom()?;
            lhs = DimExpr::Mul(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn atom(&mut self) -> Result<DimExpr, String> {
        let tok = self
            .peek()
            .ok_or_else(|| "dim expression ends early".to_string())?
            .to_string();
        self.pos += 1;
        if tok == "(" {
            let e = self.sum()?;
            if self.peek() != Some(")") {
                return Err("missing `)` in dim expression".to_string());
            }
            self.pos += 1;
            return Ok(e);
        }
        if let Ok(v) = tok.parse::<i64>() {
            return Ok(DimExpr::Fixed(v));
        }
        let first = tok.chars().next().unwrap_or('0');
        if first.is_ascii_alphabetic() || first == '_' {
            Ok(DimExpr::Name(tok))
        } else {
            Err(format!("`{tok}` is neither a number nor a size name"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates_expressions() {
        let e = DimExpr::parse("3*s + in_f").unwrap();
        let mut b = SizeBindings::new();
        b.insert("s".into(), 128);
        b.insert("in_f".into(), 32);
        assert_eq!(e.eval(&b), Some(416));
        assert_eq!(e.names(), vec!["s", "in_f"]);
        assert_eq!(e.to_string(), "3*s+in_f");
        assert_eq!(DimExpr::parse("2*(a-1)").unwrap().to_string(), "2*(a-1)");
        assert_eq!(DimExpr::parse("n").unwrap().as_name(), Some("n"));
    }

    #[test]
    fn rejects_garbage_and_unbound_names() {
        assert!(DimExpr::parse("").is_err());
        assert!(DimExpr::parse("n +").is_err());
        assert!(DimExpr::parse("n / 2").is_err());
        assert!(DimExpr::parse("(n").is_err());
        assert!(DimExpr::parse("9x").is_err());
        assert_eq!(
            DimExpr::parse("m").unwrap().eval(&SizeBindings::new()),
            None
        );
        let big = DimExpr::parse("n*n").unwrap();
        let b = SizeBindings::from([("n".to_string(), i64::MAX)]);
        assert_eq!(big.eval(&b), None);
    }

    #[test]
    fn serde_accepts_numbers_and_strings() {
        let v: Vec<DimExpr> = serde_json::from_str(r#"[3, "n", "2*n"]"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"[3,"n","2*n"]"#);
        assert!(serde_json::from_str::<DimExpr>("-1").is_err());
    }
}
