//! Where a live migration left the domain, from what the two agents tell once it ended (or a
//! restart cut it off): pure logic, so every case is in one labelled table test.

use plinth_common::api::{AgentMigration, AgentMigrationState};

/// How an attempt ended, as far as the agents tell.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// libvirt reports the job done and the domain is off the source.
    Moved { libvirt_ms: Option<u64> },
    /// The domain is still on the source (and nothing of it runs on the target, whose
    /// prepared files can go).
    Stayed(String),
    /// Where it runs is not clear (both hosts, or neither agent answers): nothing is cleaned
    /// up, and the reason says what the agents told.
    Unclear(String),
}

/// How following a migration ended.
#[derive(Debug, Clone)]
pub(crate) enum Ended {
    /// The source agent reports the migration over (succeeded, failed, or not known to it).
    Reported(AgentMigration),
    /// The source agent could not say (or its agent could not be found); why.
    Unknown(String),
}

/// Where one agent says the domain is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen {
    Running,
    /// The agent answered: no domain, or one that does not run (a target's waits paused).
    NotRunning,
    /// The agent did not answer (or is not known); why.
    Unreachable(String),
}

/// What is known once a migration ended: what the source agent reported, why the coordinator
/// aborted it (if it did), and where each agent says the domain is.
pub(crate) struct Sighting<'a> {
    pub source: &'a str,
    pub target: &'a str,
    pub ended: Ended,
    pub aborted: Option<String>,
    pub on_source: Seen,
    pub on_target: Seen,
}

/// Where the domain is, from what the agents told: moved, stayed (a retry may follow), or
/// unclear (a person should look before anything is cleaned up or retried).
pub(crate) fn verdict(s: Sighting<'_>) -> Outcome {
    let Sighting {
        source,
        target,
        ended,
        aborted,
        on_source,
        on_target,
    } = s;
    let libvirt_ms = match &ended {
        Ended::Reported(m) => m.libvirt_ms,
        Ended::Unknown(_) => None,
    };
    match (&ended, &on_source, &on_target) {
        // Only a finished migration runs the guest on the target (it waits paused before).
        (_, Seen::NotRunning | Seen::Unreachable(_), Seen::Running) => {
            Outcome::Moved { libvirt_ms }
        }
        (_, Seen::Running, Seen::Running) => Outcome::Unclear(format!(
            "the domain runs on both {source} and {target}; check them before anything else"
        )),
        // The target's agent is gone but libvirt finished and the source no longer has it.
        (Ended::Reported(m), Seen::NotRunning, Seen::Unreachable(_))
            if m.state == AgentMigrationState::Succeeded =>
        {
            Outcome::Moved { libvirt_ms }
        }
        _ => {
            let why = aborted
                .or(match ended {
                    Ended::Reported(m) => m.error,
                    Ended::Unknown(e) => Some(e),
                })
                .unwrap_or_else(|| "the migration did not complete".into());
            match on_source {
                Seen::Running => Outcome::Stayed(why),
                Seen::NotRunning => Outcome::Unclear(format!(
                    "{why}; the domain runs on neither host as far as their agents tell"
                )),
                Seen::Unreachable(e) => {
                    Outcome::Unclear(format!("{why}; host {source}'s agent: {e}"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_common::api::{AgentMigration, MigrationProgress};

    fn reported(state: AgentMigrationState, error: Option<&str>) -> Ended {
        Ended::Reported(AgentMigration {
            state,
            progress: MigrationProgress::default(),
            libvirt_ms: (state == AgentMigrationState::Succeeded).then_some(1234),
            error: error.map(str::to_string),
        })
    }

    #[test]
    fn where_a_migration_that_ended_left_the_domain() {
        use AgentMigrationState as M;
        use Outcome::{Moved, Stayed, Unclear};
        use Seen::{NotRunning as Absent, Running as Up};
        let down = || Seen::Unreachable("connection refused".into());
        let done = || reported(M::Succeeded, None);
        let failed = || reported(M::Failed, Some("libvirt: connection reset"));
        let lost = || Ended::Unknown("host hv-a's agent did not answer: timed out".into());
        let neither = "; the domain runs on neither host as far as their agents tell";
        // (label, ended, aborted, on source, on target, verdict)
        type Case = (
            &'static str,
            Ended,
            Option<&'static str>,
            Seen,
            Seen,
            Outcome,
        );
        let cases: Vec<Case> = vec![
            (
                "succeeded: off the source, running on the target",
                done(),
                None,
                Absent,
                Up,
                Moved {
                    libvirt_ms: Some(1234),
                },
            ),
            (
                "running on the target, source agent gone",
                done(),
                None,
                down(),
                Up,
                Moved {
                    libvirt_ms: Some(1234),
                },
            ),
            (
                "running on the target although libvirt reported a failure",
                failed(),
                None,
                Absent,
                Up,
                Moved { libvirt_ms: None },
            ),
            (
                "running on the target, source agent lost while following",
                lost(),
                None,
                down(),
                Up,
                Moved { libvirt_ms: None },
            ),
            (
                "running on the target after an abort",
                failed(),
                Some("the migration took longer than 600 s; it was aborted"),
                Absent,
                Up,
                Moved { libvirt_ms: None },
            ),
            (
                "running on both hosts",
                done(),
                None,
                Up,
                Up,
                Unclear(
                    "the domain runs on both hv-a and hv-b; check them before anything else"
                        .into(),
                ),
            ),
            (
                "succeeded, off the source, target agent gone",
                done(),
                None,
                Absent,
                down(),
                Moved {
                    libvirt_ms: Some(1234),
                },
            ),
            (
                "failed, off the source, target agent gone",
                failed(),
                None,
                Absent,
                down(),
                Unclear(format!("libvirt: connection reset{neither}")),
            ),
            (
                "failed, still on the source",
                failed(),
                None,
                Up,
                Absent,
                Stayed("libvirt: connection reset".into()),
            ),
            (
                "failed without a word, still on the source",
                reported(M::Failed, None),
                None,
                Up,
                Absent,
                Stayed("the migration did not complete".into()),
            ),
            (
                "not known to the source agent, still on the source",
                reported(M::None, None),
                None,
                Up,
                Absent,
                Stayed("the migration did not complete".into()),
            ),
            (
                "succeeded yet still running on the source only",
                done(),
                None,
                Up,
                Absent,
                Stayed("the migration did not complete".into()),
            ),
            (
                "still on the source, target agent gone",
                failed(),
                None,
                Up,
                down(),
                Stayed("libvirt: connection reset".into()),
            ),
            (
                "aborted: the coordinator's reason comes before libvirt's",
                failed(),
                Some("host hv-b's agent stopped answering during the migration; it was aborted"),
                Up,
                down(),
                Stayed(
                    "host hv-b's agent stopped answering during the migration; it was aborted"
                        .into(),
                ),
            ),
            (
                "source agent lost while following, domain still on the source",
                lost(),
                None,
                Up,
                Absent,
                Stayed("host hv-a's agent did not answer: timed out".into()),
            ),
            (
                "succeeded, on neither host",
                done(),
                None,
                Absent,
                Absent,
                Unclear(format!("the migration did not complete{neither}")),
            ),
            (
                "failed, on neither host",
                failed(),
                None,
                Absent,
                Absent,
                Unclear(format!("libvirt: connection reset{neither}")),
            ),
            (
                "failed, source agent gone, not on the target",
                failed(),
                None,
                down(),
                Absent,
                Unclear("libvirt: connection reset; host hv-a's agent: connection refused".into()),
            ),
            (
                "both agents gone",
                lost(),
                None,
                down(),
                down(),
                Unclear(
                    "host hv-a's agent did not answer: timed out; host hv-a's agent: connection refused"
                        .into(),
                ),
            ),
        ];
        for (label, ended, aborted, on_source, on_target, want) in cases {
            let got = verdict(Sighting {
                source: "hv-a",
                target: "hv-b",
                ended,
                aborted: aborted.map(str::to_string),
                on_source,
                on_target,
            });
            assert_eq!(got, want, "{label}");
        }
    }
}
