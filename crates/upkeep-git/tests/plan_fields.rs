//! `plan_text` holds a marked field the writer refuses on that field alone: the other fields
//! of the same file are still written (issue 11, "one bad field holds only itself").

use jiff::Timestamp;
use upkeep_core::schedule::Schedule;
use upkeep_git::plan::{Action, Lookup, PolicyDecision, plan_text, scopes};

struct Fixed(PolicyDecision);

impl Lookup for Fixed {
    fn policy(&self, _namespace: &str, _name: &str) -> Option<&PolicyDecision> {
        Some(&self.0)
    }
    fn schedule(&self, _namespace: &str, _name: &str) -> Option<&Schedule> {
        None
    }
    fn unparsable(&self, _rel: &str) -> bool {
        false
    }
}

#[test]
fn a_version_that_does_not_fit_one_field_holds_only_that_field() {
    let lookup = Fixed(PolicyDecision {
        selected: Some("1.10".to_owned()),
        ..PolicyDecision::default()
    });
    let scope = scopes(&[], &lookup).expect("no automations").remove(0);
    let text =
        "plain: 1.9 # {\"$upkeep\": \"n:chart\"}\nquoted: \"1.9\" # {\"$upkeep\": \"n:chart\"}\n";
    let plan = plan_text("f.yaml", text, &scope, &lookup, Timestamp::UNIX_EPOCH);
    let fields: Vec<(usize, Action)> = plan.fields.iter().map(|f| (f.line, f.action)).collect();
    assert_eq!(
        fields,
        [(1, Action::Error), (2, Action::Write)],
        "a plain 1.10 would read as the float 1.1: only that field is held"
    );
    assert!(
        plan.fields[0].reason.contains("hint:"),
        "{}",
        plan.fields[0].reason
    );
    assert_eq!(
        plan.new_text.as_deref(),
        Some(
            "plain: 1.9 # {\"$upkeep\": \"n:chart\"}\nquoted: \"1.10\" # {\"$upkeep\": \"n:chart\"}\n"
        )
    );
    assert_eq!(plan.changes.len(), 1);
}
