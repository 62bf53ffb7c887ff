//! The `labelSelector` query parameter and `metav1.LabelSelector`, as apimachinery parses,
//! converts and matches them (`pkg/labels/selector.go`, `LabelSelectorAsSelector`): the lexer,
//! the recursive-descent parser with its error texts, and the requirements it yields.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    aggregate, go_quote, go_string_slice, invalid, label_value_errors, qualified_name_errors,
    ApiError,
};

/// A parsed `labelSelector` query parameter (k8s.io/apimachinery/pkg/labels: `=`, `==`, `!=`,
/// `in`, `notin`, `key` (exists), `!key` (does not exist), `>`, `<`; a comma means AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key, as apimachinery sorts them, so that `Display` prints what kube does.
    requirements: Vec<Requirement>,
    /// `labels.Nothing()`, what a null `metav1.LabelSelector` converts to: it matches no object.
    nothing: bool,
}

impl LabelSelector {
    /// Parses a `labelSelector`; the empty (or all-blank) string selects everything. A mistake is
    /// a 400 BadRequest whose message is apimachinery's, as kube-apiserver returns it.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut requirements = Parser::new(s).parse().map_err(ApiError::BadRequest)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether an object whose `metadata.labels` is `labels` is selected (pass an empty map for an
    /// object without labels).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// `matches` on a whole object's `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        match object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
        {
            Some(labels) => self.matches(labels),
            None => self.matches(&Map::new()),
        }
    }

    /// True when the selector restricts nothing (a null selector restricts everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Converts a `metav1.LabelSelector` (`matchLabels` plus `matchExpressions` with In, NotIn,
    /// Exists and DoesNotExist) as `metav1.LabelSelectorAsSelector` does: null selects nothing,
    /// `{}` everything, and a bad key, value or operator is an error with apimachinery's text.
    pub fn from_label_selector(v: &Value) -> Result<LabelSelector, String> {
        if v.is_null() {
            return Ok(LabelSelector {
                requirements: Vec::new(),
                nothing: true,
            });
        }
        let selector = MetaLabelSelector::deserialize(v).map_err(|e| e.to_string())?;
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.unwrap_or_default() {
            requirements.push(Requirement::new(&key, Operator::Equals, vec![value])?);
        }
        for expression in selector.match_expressions.unwrap_or_default() {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(format!(
                        "{} is not a valid label selector operator",
                        go_quote(other)
                    ))
                }
            };
            let values = expression.values.unwrap_or_default();
            requirements.push(Requirement::new(&expression.key, operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }
}

/// Prints the selector as apimachinery's `Selector.String()` does (requirements sorted by key,
/// set values sorted): `metav1.FormatLabelSelector`'s form, as in a scale's `status.selector`.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            write!(f, "{}{r}", if i > 0 { "," } else { "" })?;
        }
        Ok(())
    }
}

/// The JSON form of `metav1.LabelSelector`; absent members read as Go's zero values.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaLabelSelector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<MetaRequirement>>,
}

#[derive(Deserialize)]
struct MetaRequirement {
    #[serde(default)]
    key: String,
    #[serde(default)]
    operator: String,
    values: Option<Vec<String>>,
}

/// `selection.Operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One comma-separated term of a label selector (`labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: every check runs and the failures are reported together, as an
    /// aggregate, in apimachinery's order (key, number of values, then each value).
    fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
        use Operator::*;
        let mut errors = Vec::new();
        let key_errors = qualified_name_errors(key);
        if !key_errors.is_empty() {
            errors.push(invalid("key", &go_quote(key), &key_errors.join("; ")));
        }
        let arity = match operator {
            In | NotIn if values.is_empty() => {
                "for 'in', 'notin' operators, values set can't be empty"
            }
            Equals | DoubleEquals | NotEquals if values.len() != 1 => {
                "exact-match compatibility requires one single value"
            }
            Exists | DoesNotExist if !values.is_empty() => {
                "values set must be empty for exists and does not exist"
            }
            GreaterThan | LessThan if values.len() != 1 => {
                "for 'Gt', 'Lt' operators, exactly one value is required"
            }
            _ => "",
        };
        if !arity.is_empty() {
            errors.push(invalid("values", &go_string_slice(&values), arity));
        }
        for (i, value) in values.iter().enumerate() {
            if matches!(operator, GreaterThan | LessThan) && value.parse::<i64>().is_err() {
                let detail = "for 'Gt', 'Lt' operators, the value must be an integer";
                errors.push(invalid(&format!("values[{i}]"), &go_quote(value), detail));
            }
        }
        for (i, value) in values.iter().enumerate() {
            let value_errors = label_value_errors(value);
            if !value_errors.is_empty() {
                let field = format!("values[{i}][{key}]");
                errors.push(invalid(&field, &go_quote(value), &value_errors.join("; ")));
            }
        }
        if !errors.is_empty() {
            return Err(aggregate(errors));
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    fn matches(&self, labels: &Map<String, Value>) -> bool {
        // A label's value is a string; anything else can only come from a malformed object and
        // reads as Go's zero value.
        let value = labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(listed),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(listed),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = value.map(str::parse::<i64>) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                (self.operator == Operator::GreaterThan && actual > wanted)
                    || (self.operator == Operator::LessThan && actual < wanted)
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let (key, values) = (&self.key, values.join(","));
        match self.operator {
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Equals => write!(f, "{key}={values}"),
            Operator::DoubleEquals => write!(f, "{key}=={values}"),
            Operator::NotEquals => write!(f, "{key}!={values}"),
            Operator::In => write!(f, "{key} in ({values})"),
            Operator::NotIn => write!(f, "{key} notin ({values})"),
            Operator::GreaterThan => write!(f, "{key}>{values}"),
            Operator::LessThan => write!(f, "{key}<{values}"),
        }
    }
}

fn is_special_symbol(b: u8) -> bool {
    b"=!(),><".contains(&b)
}

fn is_blank(b: u8) -> bool {
    b" \t\r\n".contains(&b)
}

/// apimachinery's lexer, giving each token's text: blanks separate tokens; a run of symbols is
/// the longest operator it starts with (`!=`, `==`, else one symbol); anything else up to a
/// symbol or a blank is a word; the end is the empty token. Go's lexer reads a NUL byte as the
/// end of the input: at the start of a token it ends the input, right after one it is swallowed.
fn tokenize(s: &str) -> Vec<String> {
    let (bytes, mut i, mut tokens) = (s.as_bytes(), 0, Vec::new());
    loop {
        while bytes.get(i).is_some_and(|&b| is_blank(b)) {
            i += 1;
        }
        if bytes.get(i).is_none_or(|&b| b == 0) {
            tokens.push(String::new());
            return tokens;
        }
        let start = i;
        if is_special_symbol(bytes[i]) {
            i += if b"!=".contains(&bytes[i]) && bytes.get(i + 1) == Some(&b'=') {
                2
            } else {
                1
            };
        } else {
            while bytes
                .get(i)
                .is_some_and(|&b| b != 0 && !is_special_symbol(b) && !is_blank(b))
            {
                i += 1;
            }
        }
        // Every boundary above is an ASCII byte, so the slice is whole characters.
        tokens.push(s[start..i].to_string());
        if bytes.get(i) == Some(&0) {
            i += 1;
        }
    }
}

/// Whether a token is a word (a key or a value) rather than an operator or the end. `in` and
/// `notin` are operators where an operator may stand (`as_value` false) and words elsewhere.
fn is_word(token: &str, as_value: bool) -> bool {
    let keyword = matches!(token, "in" | "notin") && !as_value;
    !token.is_empty() && !token.bytes().any(is_special_symbol) && !keyword
}

/// apimachinery's recursive-descent parser over the token list, with its error texts and quirks
/// (`x in (a,,)` is refused in 1.32).
struct Parser {
    tokens: Vec<String>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Parser {
        Parser {
            tokens: tokenize(s),
            position: 0,
        }
    }

    /// The next token; the list ends with the end token and parsing stops there, so answering
    /// the end again past it keeps that true without a panic.
    fn peek(&self) -> &str {
        self.tokens
            .get(self.position)
            .or(self.tokens.last())
            .map_or("", String::as_str)
    }

    fn next(&mut self) -> String {
        let token = self.peek().to_string();
        self.position += 1;
        token
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let token = self.peek();
            if token.is_empty() {
                return Ok(requirements);
            }
            if !is_word(token, true) && token != "!" {
                return Err(format!(
                    "found '{token}', expected: !, identifier, or 'end of string'"
                ));
            }
            let requirement = self
                .parse_requirement()
                .map_err(|e| format!("unable to parse requirement: {e}"))?;
            requirements.push(requirement);
            match self.next().as_str() {
                "" => return Ok(requirements),
                "," => match self.peek() {
                    t if is_word(t, true) || t == "!" => {}
                    t => return Err(format!("found '{t}', expected: identifier after ','")),
                },
                t => return Err(format!("found '{t}', expected: ',' or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        // The key, and the operator it implies: `!key` is does-not-exist whatever follows, and a
        // bare key followed by `,` or the end is exists.
        let mut key = self.next();
        let negated = key == "!";
        if negated {
            key = self.next();
        }
        if !is_word(&key, true) {
            return Err(format!("found '{key}', expected: identifier"));
        }
        let key_errors = qualified_name_errors(&key);
        if !key_errors.is_empty() {
            // apimachinery validates the key against a nil field path, which prints as `<nil>`.
            return Err(invalid("<nil>", &go_quote(&key), &key_errors.join("; ")));
        }
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        if matches!(self.peek(), "" | ",") {
            return Requirement::new(&key, Operator::Exists, Vec::new());
        }
        let operator = match self.next().as_str() {
            "in" => Operator::In,
            "notin" => Operator::NotIn,
            "=" => Operator::Equals,
            "==" => Operator::DoubleEquals,
            "!=" => Operator::NotEquals,
            ">" => Operator::GreaterThan,
            "<" => Operator::LessThan,
            t => {
                return Err(format!(
                    "found '{t}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values.into_iter().collect())
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let open = self.next();
        if open != "(" {
            return Err(format!("found '{open}' expected: '('"));
        }
        let first = self.peek().to_string();
        if is_word(&first, true) || first == "," {
            let values = self.parse_identifiers_list()?;
            if self.next() != ")" {
                return Err(format!("found '{first}', expected: ')'"));
            }
            Ok(values)
        } else if first == ")" {
            self.next();
            Ok(BTreeSet::from([String::new()]))
        } else {
            Err(format!("found '{first}', expected: ',', ')' or identifier"))
        }
    }

    /// A list of possibly empty words between commas; an empty one is the empty value.
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let token = self.next();
            if is_word(&token, true) {
                values.insert(token);
                match self.peek() {
                    "," => {}
                    ")" => return Ok(values),
                    t => return Err(format!("found '{t}', expected: ',' or ')'")),
                }
            } else if token == "," {
                if values.is_empty() {
                    values.insert(String::new());
                }
                if self.peek() == ")" {
                    values.insert(String::new());
                    return Ok(values);
                }
                if self.peek() == "," {
                    self.next();
                    values.insert(String::new());
                }
            } else {
                return Err(format!("found '{token}', expected: ',', or identifier"));
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(self.peek(), "" | ",") {
            return Ok(BTreeSet::from([String::new()]));
        }
        match self.next() {
            word if is_word(&word, true) => Ok(BTreeSet::from([word])),
            t => Err(format!("found '{t}', expected: identifier")),
        }
    }
}
