//! Selectors: which clusters a ClusterUpgrade, a policy or a schedule applies to.
//!
//! Two languages select clusters, because users come from two places:
//!
//! - **Matchers** (`ClusterUpgrade.spec.matchers`, from the design notes that started the
//!   project): `{name, key, value, isRegex}`. Without `key` the value is compared with the
//!   cluster's name, with `key` with that label. A regex must match the *whole* value (it is
//!   anchored here, so `prod` never picks `preprod`). A cluster is selected when *any* matcher
//!   matches; an empty list selects nothing (an upgrade campaign must name its clusters).
//! - **Label selectors** (`MaintenanceSchedule.spec.clusterSelector`): the Kubernetes
//!   `matchLabels` / `matchExpressions` semantics, so a selector means here what it means to
//!   `kubectl get -l`. An empty selector selects everything, as in Kubernetes.
//!
//! Both are compiled once (regexes included) and then evaluated against plain
//! [`ClusterLabels`], never against Kubernetes objects.

use std::collections::BTreeMap;

use regex::Regex;

/// What a selector sees of a cluster: its name and labels.
#[derive(Debug, Clone, Copy)]
pub struct ClusterLabels<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// Why a matcher or selector is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("invalid regex {value:?}: {reason}")]
    InvalidRegex { value: String, reason: String },
    #[error("operator {operator:?} is not one of In, NotIn, Exists, DoesNotExist")]
    UnknownOperator { operator: String },
    #[error("operator {operator} needs at least one value")]
    MissingValues { operator: String },
    #[error("operator {operator} takes no values")]
    UnexpectedValues { operator: String },
}

impl SelectorError {
    /// A short hint at the fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            SelectorError::InvalidRegex { .. } => {
                Some("regexes use Rust/RE2 syntax and match the whole value, e.g. `prod-.*`".into())
            }
            SelectorError::UnknownOperator { .. } => {
                Some("use In, NotIn, Exists or DoesNotExist".into())
            }
            SelectorError::MissingValues { .. } => Some("add `values: [...]`".into()),
            SelectorError::UnexpectedValues { .. } => Some("remove `values`".into()),
        }
    }
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Regex(Regex),
}

impl Pattern {
    fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Exact(v) => v == s,
            Pattern::Regex(r) => r.is_match(s),
        }
    }
}

/// One compiled ClusterUpgrade matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: Option<String>,
    key: Option<String>,
    pattern: Pattern,
}

impl Matcher {
    /// Compiles a matcher. With `is_regex` the value must match the whole name or label value.
    pub fn new(
        name: Option<String>,
        key: Option<String>,
        value: &str,
        is_regex: bool,
    ) -> Result<Matcher, SelectorError> {
        let pattern = if is_regex {
            let anchored = format!("^(?:{value})$");
            Pattern::Regex(
                Regex::new(&anchored).map_err(|e| SelectorError::InvalidRegex {
                    value: value.to_owned(),
                    reason: crate::regex_error_reason(&e),
                })?,
            )
        } else {
            Pattern::Exact(value.to_owned())
        };
        Ok(Matcher { name, key, pattern })
    }

    /// The matcher's own name, if it has one (used in explanations).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether this matcher picks `cluster`. A missing label never matches.
    pub fn matches(&self, cluster: ClusterLabels<'_>) -> bool {
        match &self.key {
            None => self.pattern.matches(cluster.name),
            Some(key) => cluster
                .labels
                .get(key)
                .is_some_and(|v| self.pattern.matches(v)),
        }
    }
}

/// A list of matchers: a cluster is selected when any matcher matches.
#[derive(Debug, Clone, Default)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, cluster: ClusterLabels<'_>) -> bool {
        self.0.iter().any(|m| m.matches(cluster))
    }

    /// The first matcher that picks `cluster`, to say why it was selected.
    pub fn first_match(&self, cluster: ClusterLabels<'_>) -> Option<&Matcher> {
        self.0.iter().find(|m| m.matches(cluster))
    }
}

/// A Kubernetes label selector requirement operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl std::str::FromStr for Operator {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "In" => Ok(Operator::In),
            "NotIn" => Ok(Operator::NotIn),
            "Exists" => Ok(Operator::Exists),
            "DoesNotExist" => Ok(Operator::DoesNotExist),
            other => Err(SelectorError::UnknownOperator {
                operator: other.to_owned(),
            }),
        }
    }
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A compiled Kubernetes label selector (`matchLabels` AND every `matchExpressions` entry).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    match_labels: BTreeMap<String, String>,
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Builds a selector. `expressions` are `(key, operator, values)`.
    pub fn new(
        match_labels: BTreeMap<String, String>,
        expressions: impl IntoIterator<Item = (String, String, Vec<String>)>,
    ) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        for (key, operator, values) in expressions {
            let op: Operator = operator.parse()?;
            match op {
                Operator::In | Operator::NotIn if values.is_empty() => {
                    return Err(SelectorError::MissingValues { operator });
                }
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                    return Err(SelectorError::UnexpectedValues { operator });
                }
                _ => {}
            }
            requirements.push(Requirement {
                key,
                operator: op,
                values,
            });
        }
        Ok(LabelSelector {
            match_labels,
            requirements,
        })
    }

    /// A selector that selects every cluster.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| {
                let got = labels.get(&r.key);
                match r.operator {
                    Operator::In => got.is_some_and(|v| r.values.contains(v)),
                    // Kubernetes: NotIn also matches objects without the label.
                    Operator::NotIn => got.is_none_or(|v| !r.values.contains(v)),
                    Operator::Exists => got.is_some(),
                    Operator::DoesNotExist => got.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matchers_table() {
        // (key, value, is_regex, cluster name, cluster labels, expected, reason)
        type Case<'a> = (
            Option<&'a str>,
            &'a str,
            bool,
            &'a str,
            &'a [(&'a str, &'a str)],
            bool,
            &'a str,
        );
        let cases: &[Case<'_>] = &[
            (None, "prod-eu", false, "prod-eu", &[], true, "exact name"),
            (
                None,
                "prod",
                false,
                "prod-eu",
                &[],
                false,
                "exact name is not a prefix match",
            ),
            (
                None,
                "prod-.*",
                true,
                "prod-eu",
                &[],
                true,
                "regex on the name",
            ),
            (
                None,
                "prod",
                true,
                "preprod",
                &[],
                false,
                "regexes are anchored at the start",
            ),
            (
                None,
                "prod",
                true,
                "prod-eu",
                &[],
                false,
                "regexes are anchored at the end",
            ),
            (
                None,
                "a|b",
                true,
                "ab",
                &[],
                false,
                "alternation is anchored as a whole",
            ),
            (
                None,
                "a|b",
                true,
                "b",
                &[],
                true,
                "alternation matches one branch whole",
            ),
            (
                Some("stage"),
                "dev",
                false,
                "x",
                &[("stage", "dev")],
                true,
                "exact label value",
            ),
            (
                Some("stage"),
                "dev",
                false,
                "dev",
                &[],
                false,
                "a key never falls back to the name",
            ),
            (
                Some("stage"),
                "dev|staging",
                true,
                "x",
                &[("stage", "staging")],
                true,
                "regex on a label",
            ),
            (
                Some("stage"),
                ".*",
                true,
                "x",
                &[],
                false,
                "a missing label never matches, even .*",
            ),
            (
                Some("stage"),
                "",
                false,
                "x",
                &[("stage", "")],
                true,
                "an empty label value matches an empty value",
            ),
        ];
        for (key, value, is_regex, name, lbls, expected, reason) in cases {
            let m = Matcher::new(None, key.map(str::to_owned), value, *is_regex).unwrap();
            let l = labels(lbls);
            let got = m.matches(ClusterLabels { name, labels: &l });
            assert_eq!(
                got, *expected,
                "{reason}: {key:?}={value:?} vs {name} {lbls:?}"
            );
        }
    }

    #[test]
    fn any_matcher_selects() {
        let ms = Matchers(vec![
            Matcher::new(Some("by-name".into()), None, "alpha", false).unwrap(),
            Matcher::new(Some("by-stage".into()), Some("stage".into()), "prod", false).unwrap(),
        ]);
        let none = labels(&[]);
        let prod = labels(&[("stage", "prod")]);
        assert!(ms.matches(ClusterLabels {
            name: "alpha",
            labels: &none
        }));
        let hit = ms
            .first_match(ClusterLabels {
                name: "beta",
                labels: &prod,
            })
            .unwrap();
        assert_eq!(hit.name(), Some("by-stage"));
        assert!(!ms.matches(ClusterLabels {
            name: "beta",
            labels: &none
        }));
        assert!(
            !Matchers::default().matches(ClusterLabels {
                name: "alpha",
                labels: &none
            }),
            "an empty matcher list selects nothing"
        );
    }

    #[test]
    fn invalid_regex_is_an_error_with_a_hint() {
        let err = Matcher::new(None, None, "prod-(", true).unwrap_err();
        assert!(matches!(err, SelectorError::InvalidRegex { ref value, .. } if value == "prod-("));
        assert!(err.hint().is_some());
        assert!(!err.to_string().contains('\n'), "one-line message: {err}");
    }

    #[test]
    fn label_selector_table() {
        let cluster = labels(&[("stage", "prod"), ("region", "eu")]);
        let ls = |m: &[(&str, &str)], e: Vec<(&str, &str, Vec<&str>)>| {
            LabelSelector::new(
                labels(m),
                e.into_iter().map(|(k, o, v)| {
                    (
                        k.to_owned(),
                        o.to_owned(),
                        v.into_iter().map(str::to_owned).collect(),
                    )
                }),
            )
            .unwrap()
        };
        let cases: Vec<(LabelSelector, bool, &str)> = vec![
            (
                LabelSelector::everything(),
                true,
                "an empty selector selects everything",
            ),
            (ls(&[("stage", "prod")], vec![]), true, "matchLabels hit"),
            (ls(&[("stage", "dev")], vec![]), false, "matchLabels miss"),
            (
                ls(&[("stage", "prod"), ("tier", "x")], vec![]),
                false,
                "matchLabels are ANDed",
            ),
            (
                ls(&[], vec![("region", "In", vec!["eu", "us"])]),
                true,
                "In hit",
            ),
            (
                ls(&[], vec![("tier", "In", vec!["x"])]),
                false,
                "In needs the label",
            ),
            (
                ls(&[], vec![("tier", "NotIn", vec!["x"])]),
                true,
                "NotIn matches a missing label, as in Kubernetes",
            ),
            (
                ls(&[], vec![("stage", "NotIn", vec!["prod"])]),
                false,
                "NotIn miss",
            ),
            (ls(&[], vec![("stage", "Exists", vec![])]), true, "Exists"),
            (
                ls(&[], vec![("stage", "DoesNotExist", vec![])]),
                false,
                "DoesNotExist",
            ),
            (
                ls(&[("stage", "prod")], vec![("region", "In", vec!["us"])]),
                false,
                "labels AND expressions",
            ),
        ];
        for (sel, expected, reason) in cases {
            assert_eq!(sel.matches(&cluster), expected, "{reason}");
        }
    }

    #[test]
    fn label_selector_rejects_bad_expressions() {
        let bad = |op: &str, vals: Vec<String>| {
            LabelSelector::new(BTreeMap::new(), [("k".to_owned(), op.to_owned(), vals)])
                .unwrap_err()
        };
        assert!(matches!(
            bad("Equals", vec![]),
            SelectorError::UnknownOperator { .. }
        ));
        assert!(matches!(
            bad("In", vec![]),
            SelectorError::MissingValues { .. }
        ));
        assert!(matches!(
            bad("Exists", vec!["x".into()]),
            SelectorError::UnexpectedValues { .. }
        ));
    }
}
