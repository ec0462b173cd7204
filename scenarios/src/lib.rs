//! marlow-scenarios: the scenario schema (serde types, one module per section),
//! the loader and validator, and the shipped scenario files, shared by the
//! simulator and real mode. See `scenarios/README.md` for the schema.

mod check;
mod cluster;
mod design;
mod error;
mod faults;
mod hunt;
mod invariant;
mod load;
mod locate;
mod phases;
mod range;
mod shape;
mod timeline;
mod validate;
mod workload;

pub use check::{Check, Expectation, WeakPoint, MAX_WITHIN_SEEDS};
pub use cluster::{
    CleanupPolicy, Cluster, ProcessingGuarantee, MAX_APP_INSTANCES, MAX_PARTITIONS, TOPICS,
};
pub use design::{DesignKind, DesignSection};
pub use error::{Problem, ScenarioError};
pub use faults::Faults;
pub use hunt::{DrawnOption, Hunt, HuntMix};
pub use invariant::Invariant;
pub use load::{shipped, shipped_names, shipped_text};
pub use phases::Phases;
pub use range::MinMax;
pub use timeline::{TimelineAction, TimelineEvent};
pub use validate::MAX_RATE_PER_S;
pub use workload::{OperationMix, Resubmit, Skew, Workload, MAX_OPERATIONS_PER_CLIENT};

use marlow_model::{AlarmRule, DesignConfig};
use serde::{Deserialize, Serialize};
use validate::Validator;

/// Longest scenario description: it is one line of `marlow list`.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// One named scenario: everything a run needs besides the seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Lowercase letters, digits and `-`; the shipped ones match their file name.
    pub name: String,
    /// One line, shown by `marlow list`.
    pub description: String,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub design: DesignSection,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub phases: Phases,
    #[serde(default)]
    pub check: Check,
    /// Swarm testing over the workload and the topology: ranges each seed
    /// draws from (`Hunt::draw`). Absent in every concrete scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hunt: Option<Hunt>,
}

impl Scenario {
    /// The alarm rule shared by the processor and the alarm checker.
    pub fn alarm_rule(&self) -> AlarmRule {
        AlarmRule {
            threshold_minor: self.check.alarm_threshold_minor,
        }
    }

    /// The model's configuration of the processor this scenario runs.
    pub fn design_config(&self) -> DesignConfig {
        self.design.config(self.alarm_rule())
    }

    /// The design, as coverage marks know it.
    pub fn mark_design(&self) -> marlow_model::MarkDesign {
        mark_design(self.design.design)
    }

    /// The scenario with the design overridden (the CLI's `--design`). The same
    /// kind keeps the file's switches; another kind gets every switch at its
    /// default and drops `check.required_marks` (they say what the file's design
    /// must reach: the hardened design, being fast, may never make a client time
    /// out in a scenario whose seed design makes every one do so), and switching
    /// to `hardened` drops `check.expect`, which is a statement about the seed design.
    pub fn with_design(mut self, kind: DesignKind) -> Scenario {
        if self.design.design != kind {
            self.design = DesignSection::of_kind(kind);
            self.check.required_marks.clear();
        }
        if kind == DesignKind::Hardened {
            self.check.expect = None;
        }
        self
    }

    /// Checks ranges and relations between fields; every problem is reported.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut v = Validator::default();
        validate_name(&mut v, &self.name);
        validate_description(&mut v, &self.description);
        self.workload.validate(&mut v);
        self.design.validate(&mut v);
        self.cluster.validate(&mut v);
        self.cluster
            .validate_copartitioning(&mut v, &self.design_config());
        self.faults.validate(&mut v);
        timeline::validate_timeline(
            &mut v,
            &self.faults.timeline,
            &self.cluster,
            self.phases.safety_duration_ms,
        );
        self.phases.validate(&mut v);
        self.check
            .validate(&mut v, self.design.design == DesignKind::Seed);
        let transactions = self.cluster.processing_guarantee == ProcessingGuarantee::ExactlyOnce;
        self.check
            .validate_marks(&mut v, mark_design(self.design.design), transactions);
        if let Some(hunt) = &self.hunt {
            hunt.validate(&mut v);
            if v.is_clean() {
                self.validate_hunt_corners(&mut v);
            }
        }
        let problems = v.into_problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The design kind, as coverage marks know it.
fn mark_design(kind: DesignKind) -> marlow_model::MarkDesign {
    match kind {
        DesignKind::Seed => marlow_model::MarkDesign::Seed,
        DesignKind::Hardened => marlow_model::MarkDesign::Hardened,
    }
}

impl Scenario {
    /// The smallest and the largest draw of every `[hunt]` range must each
    /// make a valid scenario (with the other sections), so no seed can draw
    /// one that is not. (Ranges are independent, so the corners are the
    /// extremes that relations such as `hot_accounts <= accounts` can meet.)
    fn validate_hunt_corners(&self, v: &mut Validator) {
        let highest = 1.0 - f64::EPSILON;
        for (corner, unit) in [("lowest", 0.0), ("highest", highest)] {
            let (drawn, _) = Hunt::draw(self, || unit);
            if let Err(problems) = drawn.validate() {
                for problem in problems {
                    v.fail(
                        format!("hunt ({corner} draw): {}", problem.field),
                        problem.expected,
                        problem.found,
                    );
                }
            }
        }
    }
}

fn validate_name(v: &mut Validator, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        v.fail(
            "name",
            "1 to 64 lowercase letters, digits or `-`",
            format!("{name:?}"),
        );
    }
}

fn validate_description(v: &mut Validator, description: &str) {
    let chars = description.chars().count();
    if description.trim().is_empty() || description.contains('\n') || chars > MAX_DESCRIPTION_CHARS
    {
        v.fail(
            "description",
            format!("one non-empty line of at most {MAX_DESCRIPTION_CHARS} characters"),
            format!(
                "{chars} characters{}",
                if description.contains('\n') {
                    " over several lines"
                } else {
                    ""
                }
            ),
        );
    }
}
