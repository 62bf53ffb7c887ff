//! Kubernetes resource quantities ("100m", "1.5Gi", "1e3").
//!
//! Why hand-written: `k8s_openapi::apimachinery::pkg::api::resource::Quantity` is only a
//! `String` wrapper and no maintained crate parses it with apimachinery's rounding rules,
//! so this module copies the grammar of apimachinery `pkg/api/resource/quantity.go`
//! (`ParseQuantity`, `parseQuantityString`) and the rounding of `Quantity.Value()` and
//! `Quantity.MilliValue()` (round away from zero to the requested scale).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A parsed quantity: `sign * mantissa * 10^exp10 * 2^exp2`, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedQuantity {
    /// True when the value is negative.
    pub negative: bool,
    /// Decimal digits of the number, fraction included.
    pub mantissa: u128,
    /// Power of ten applied to `mantissa` (fraction digits and decimal SI suffix).
    pub exp10: i32,
    /// Power of two applied (binary SI suffix: Ki = 10, Mi = 20, ...).
    pub exp2: u32,
}

/// Parses a quantity string with apimachinery's grammar: an optionally signed decimal
/// number (`"1"`, `"0.5"`, `".5"`) followed by nothing, a decimal SI suffix
/// (`n u m k M G T P E`), a binary SI suffix (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent
/// (`e3`, `E-2`). Returns `None` for anything else (as `ParseQuantity` returns an error).
pub fn parse(s: &str) -> Option<ParsedQuantity> {
    let s = s.trim();
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match bytes.first() {
        Some(b'+') => pos = 1,
        Some(b'-') => {
            negative = true;
            pos = 1
        }
        Some(_) => {}
        None => return None,
    }
    let mut mantissa: u128 = 0;
    let mut frac_digits: i32 = 0;
    let mut any_digit = false;
    let mut in_fraction = false;
    while pos < bytes.len() {
        let c = bytes[pos];
        if c.is_ascii_digit() {
            any_digit = true;
            // Drop digits that no longer fit: they are far below any scale we round to.
            if mantissa <= (u128::MAX - 9) / 10 {
                mantissa = mantissa * 10 + u128::from(c - b'0');
                if in_fraction {
                    frac_digits += 1;
                }
            } else if !in_fraction {
                return None;
            }
        } else if c == b'.' && !in_fraction {
            in_fraction = true;
        } else {
            break;
        }
        pos += 1;
    }
    if !any_digit {
        return None;
    }
    let (exp10, exp2) = suffix_exponents(&s[pos..])?;
    Some(ParsedQuantity {
        negative,
        mantissa,
        exp10: exp10.checked_sub(frac_digits)?,
        exp2,
    })
}

/// Interprets a suffix as (power of ten, power of two), like apimachinery's `suffixer.interpret`.
fn suffix_exponents(suffix: &str) -> Option<(i32, u32)> {
    let r = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let rest = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (rest.parse::<i32>().ok()?, 0)
        }
    };
    Some(r)
}

impl ParsedQuantity {
    /// The value multiplied by `10^scale`, rounded away from zero to an integer
    /// (apimachinery `Quantity.ScaledValue(-scale)` semantics). `None` on overflow.
    pub fn scaled(&self, scale: i32) -> Option<i64> {
        if self.mantissa == 0 {
            return Some(0);
        }
        let mut n: u128 = self.mantissa.checked_mul(1u128.checked_shl(self.exp2)?)?;
        let p = self.exp10.checked_add(scale)?;
        if p >= 0 {
            for _ in 0..p {
                n = n.checked_mul(10)?;
            }
        } else {
            let mut div: u128 = 1;
            for _ in 0..(-p) {
                div = match div.checked_mul(10) {
                    Some(d) => d,
                    // The divisor exceeds any mantissa: the value rounds up to one unit.
                    None => return Some(if self.negative { -1 } else { 1 }),
                };
            }
            let q = n / div;
            n = if n.is_multiple_of(div) { q } else { q + 1 };
        }
        let v = i64::try_from(n).ok()?;
        Some(if self.negative { -v } else { v })
    }
}

/// `Quantity.MilliValue()`: the value in thousandths, rounded up ("100m" -> 100, "1" -> 1000,
/// "0.0001" -> 1). `None` when the string does not parse or the value overflows i64.
pub fn milli_value(q: &Quantity) -> Option<i64> {
    parse(&q.0)?.scaled(3)
}

/// `Quantity.Value()`: the value in units (bytes for memory), rounded up
/// ("1Ki" -> 1024, "1.5" -> 2, "100m" -> 1). `None` when unparsable or overflowing.
pub fn value(q: &Quantity) -> Option<i64> {
    parse(&q.0)?.scaled(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn cpu_milli_values() {
        assert_eq!(milli_value(&q("100m")), Some(100));
        assert_eq!(milli_value(&q("1")), Some(1000));
        assert_eq!(milli_value(&q("0.5")), Some(500));
        assert_eq!(milli_value(&q(".25")), Some(250));
        assert_eq!(milli_value(&q("2.")), Some(2000));
        assert_eq!(milli_value(&q("1500u")), Some(2), "rounded up");
        assert_eq!(milli_value(&q("0.0001")), Some(1), "rounded up");
        assert_eq!(milli_value(&q("1n")), Some(1));
        assert_eq!(milli_value(&q("+3")), Some(3000));
        assert_eq!(milli_value(&q("-1")), Some(-1000));
    }

    #[test]
    fn memory_values_decimal_and_binary() {
        assert_eq!(value(&q("1Ki")), Some(1024));
        assert_eq!(value(&q("1.5Gi")), Some(1536 * 1024 * 1024));
        assert_eq!(value(&q("200Mi")), Some(200 * 1024 * 1024));
        assert_eq!(value(&q("1k")), Some(1000));
        assert_eq!(value(&q("1M")), Some(1_000_000));
        assert_eq!(value(&q("2G")), Some(2_000_000_000));
        assert_eq!(value(&q("1T")), Some(1_000_000_000_000));
        assert_eq!(value(&q("1P")), Some(1_000_000_000_000_000));
        assert_eq!(value(&q("1E")), Some(1_000_000_000_000_000_000));
        assert_eq!(value(&q("1Ti")), Some(1 << 40));
        assert_eq!(value(&q("1Pi")), Some(1 << 50));
        assert_eq!(value(&q("1Ei")), Some(1 << 60));
        assert_eq!(value(&q("1Mi")), Some(1 << 20));
        assert_eq!(value(&q("100m")), Some(1), "Value() rounds up");
        assert_eq!(value(&q("0.5Ki")), Some(512));
    }

    #[test]
    fn exponent_forms() {
        assert_eq!(value(&q("1e3")), Some(1000));
        assert_eq!(value(&q("1E3")), Some(1000));
        assert_eq!(value(&q("1.5e3")), Some(1500));
        assert_eq!(value(&q("1e+3")), Some(1000));
        assert_eq!(milli_value(&q("1e-3")), Some(1));
        assert_eq!(value(&q("12e-1")), Some(2));
    }

    #[test]
    fn invalid_and_overflow() {
        for bad in [
            "", "abc", "1K", "1kb", "1e", "1e+", "Mi", "1..2", "1 Gi", "--1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} must not parse");
        }
        assert_eq!(value(&q("100Ei")), None, "overflows i64");
        assert_eq!(milli_value(&q("10E")), None, "overflows i64 in milli");
        assert_eq!(value(&q("0")), Some(0));
        assert_eq!(value(&q("0Gi")), Some(0));
    }
}
