//! Durations as written in manifests: Go/Flux style (`30s`, `5m`, `1h30m`, `1.5h`, `300ms`)
//! plus days (`3d`), which Go lacks but people write for `minimumReleaseAge` and soak times.
//!
//! One small parser rather than jiff's friendly format: jiff's `SignedDuration` refuses days
//! and accepts forms (`1 hour`, `PT1H`) that Flux would reject, and the same manifest must mean
//! the same thing to upkeep and to the Flux tooling beside it. A day is exactly 24 hours.

use jiff::SignedDuration;

/// Why a duration string is invalid. `Display` names the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative duration {0:?} is not allowed")]
    Negative(String),
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { input: String, unit: String },
    #[error("invalid number in duration {0:?}")]
    InvalidNumber(String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

impl DurationError {
    /// A short hint at the fix, shown after `hint:`.
    pub fn hint(&self) -> Option<String> {
        Some(
            match self {
                DurationError::Overflow(_) => "durations are limited to about 292 years",
                DurationError::Negative(_) => "write a positive duration such as 5m",
                _ => "write a number and a unit (ns, us, ms, s, m, h, d), e.g. 30s, 5m, 1h30m, 3d",
            }
            .to_owned(),
        )
    }
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" => 86_400 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Parses a Go-style duration with days (`"72h"`, `"3d"`, `"1h30m"`, `"1.5h"`, `"0"`).
///
/// Leading/trailing whitespace is ignored; a leading `+` is allowed; a leading `-` is an error
/// (no field in upkeep takes a negative duration).
pub fn parse_duration(input: &str) -> Result<SignedDuration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(input.to_owned()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(SignedDuration::ZERO);
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(DurationError::InvalidNumber(input.to_owned()));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_owned()));
        }
        let Some(scale) = unit_nanos(unit) else {
            return Err(DurationError::UnknownUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
            });
        };
        let overflow = || DurationError::Overflow(input.to_owned());
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            // Keep at most 18 fractional digits: beyond that nothing survives at 1ns/day.
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac: u128 = digits.parse().map_err(|_| overflow())?;
            let denom = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
            part = part
                .checked_add(frac * scale / denom)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
    }
    let secs = i64::try_from(total / NANOS_PER_SECOND)
        .map_err(|_| DurationError::Overflow(input.to_owned()))?;
    let nanos = i32::try_from(total % NANOS_PER_SECOND).unwrap_or(0);
    Ok(SignedDuration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_and_days() {
        let cases: &[(&str, i64, i32, &str)] = &[
            ("30s", 30, 0, "seconds"),
            ("5m", 300, 0, "minutes"),
            ("1h30m", 5_400, 0, "compound, the Go form Flux documents"),
            ("72h", 259_200, 0, "hours beyond a day stay hours"),
            (
                "3d",
                259_200,
                0,
                "days are 24h, the form people write for release age",
            ),
            ("1d12h", 129_600, 0, "days compound with hours"),
            ("1.5h", 5_400, 0, "Go allows fractions"),
            (
                ".5s",
                0,
                500_000_000,
                "Go allows a fraction without integer part",
            ),
            (
                "300ms",
                0,
                300_000_000,
                "milliseconds must not be read as minutes",
            ),
            ("2us", 0, 2_000, "microseconds, ASCII"),
            ("2µs", 0, 2_000, "microseconds, micro sign as Go prints it"),
            ("1ns", 0, 1, "smallest unit"),
            ("0", 0, 0, "a bare zero is valid in Go"),
            ("+10s", 10, 0, "Go accepts a leading plus"),
            (
                " 10m ",
                600,
                0,
                "surrounding spaces from YAML folding are harmless",
            ),
        ];
        for &(input, secs, nanos, reason) in cases {
            let got = parse_duration(input);
            assert_eq!(
                got,
                Ok(SignedDuration::new(secs, nanos)),
                "{input:?}: {reason}"
            );
        }
    }

    #[test]
    fn rejects_bad_durations_with_named_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "Empty", "nothing to parse"),
            ("30", "MissingUnit", "Go requires a unit except for 0"),
            ("1h30", "MissingUnit", "trailing number without unit"),
            ("5w", "UnknownUnit", "weeks are not a Go unit"),
            ("5 m", "UnknownUnit", "a space is not part of any unit"),
            ("-5m", "Negative", "no field takes a negative duration"),
            ("1.2.3s", "InvalidNumber", "two decimal points"),
            ("h", "InvalidNumber", "a unit without a number"),
            (
                "99999999999999999999999999d",
                "Overflow",
                "too large for a duration",
            ),
        ];
        for &(input, variant, reason) in cases {
            match parse_duration(input) {
                Ok(d) => panic!("{input:?} parsed as {d:?}; {reason}"),
                Err(e) => {
                    let name = format!("{e:?}");
                    assert!(name.starts_with(variant), "{input:?}: got {name}; {reason}");
                    assert!(e.hint().is_some(), "{input:?}: every error has a hint");
                    assert!(e.to_string().contains(input.trim()) || input.is_empty());
                }
            }
        }
    }
}
