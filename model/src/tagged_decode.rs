//! Decoding of the internally tagged wire enums (`{"type":"deposited",
//! "amount_minor":5}`) through one flat struct per enum: the tag as a plain
//! enum and every variant's fields as options.
//!
//! Why: serde's derived decoder for an internally tagged enum first buffers
//! the whole object into an owned tree (every key and string allocated), then
//! decodes the variant from that tree. A record carries two or three such
//! enums, so that buffering was most of the cost of reading a record. A flat
//! struct is decoded in one pass. The wire format is unchanged: encoding still
//! uses the derived, tagged `Serialize`, and `tests` below check that every
//! variant decodes to what it encoded, and that bad bodies are still refused.

use crate::command::CommandKind;
use crate::event::EventBody;
use crate::ids::OwnerId;
use crate::record::OutcomeResult;
use crate::rejection::Rejection;
use serde::Deserialize;

/// A variant's field that the record did not carry.
fn required<T>(field: Option<T>, variant: &str, name: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("missing field `{name}` of `{variant}`"))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventType {
    Opened,
    Deposited,
    Withdrawn,
    OwnerAdded,
    OwnerRemoved,
}

#[derive(Deserialize)]
pub(crate) struct EventBodyWire {
    #[serde(rename = "type")]
    kind: EventType,
    owner: Option<OwnerId>,
    amount_minor: Option<i64>,
}

impl TryFrom<EventBodyWire> for EventBody {
    type Error = String;

    fn try_from(wire: EventBodyWire) -> Result<EventBody, String> {
        let owner = |variant| required(wire.owner, variant, "owner");
        let amount = |variant| required(wire.amount_minor, variant, "amount_minor");
        Ok(match wire.kind {
            EventType::Opened => EventBody::Opened {
                owner: owner("opened")?,
            },
            EventType::Deposited => EventBody::Deposited {
                amount_minor: amount("deposited")?,
            },
            EventType::Withdrawn => EventBody::Withdrawn {
                amount_minor: amount("withdrawn")?,
            },
            EventType::OwnerAdded => EventBody::OwnerAdded {
                owner: owner("owner_added")?,
            },
            EventType::OwnerRemoved => EventBody::OwnerRemoved {
                owner: owner("owner_removed")?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeType {
    Accepted,
    Rejected,
}

#[derive(Deserialize)]
pub(crate) struct OutcomeResultWire {
    result: OutcomeType,
    version: Option<u64>,
    rejection: Option<Rejection>,
}

impl TryFrom<OutcomeResultWire> for OutcomeResult {
    type Error = String;

    fn try_from(wire: OutcomeResultWire) -> Result<OutcomeResult, String> {
        Ok(match wire.result {
            OutcomeType::Accepted => OutcomeResult::Accepted {
                version: required(wire.version, "accepted", "version")?,
            },
            OutcomeType::Rejected => OutcomeResult::Rejected {
                rejection: required(wire.rejection, "rejected", "rejection")?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CommandOp {
    Open,
    Deposit,
    Withdraw,
    AddOwner,
    RemoveOwner,
}

#[derive(Deserialize)]
pub(crate) struct CommandKindWire {
    op: CommandOp,
    initial_deposit_minor: Option<i64>,
    amount_minor: Option<i64>,
    owner: Option<OwnerId>,
}

impl TryFrom<CommandKindWire> for CommandKind {
    type Error = String;

    fn try_from(wire: CommandKindWire) -> Result<CommandKind, String> {
        let owner = |variant| required(wire.owner, variant, "owner");
        let amount = |variant| required(wire.amount_minor, variant, "amount_minor");
        Ok(match wire.op {
            CommandOp::Open => CommandKind::Open {
                initial_deposit_minor: required(
                    wire.initial_deposit_minor,
                    "open",
                    "initial_deposit_minor",
                )?,
            },
            CommandOp::Deposit => CommandKind::Deposit {
                amount_minor: amount("deposit")?,
            },
            CommandOp::Withdraw => CommandKind::Withdraw {
                amount_minor: amount("withdraw")?,
            },
            CommandOp::AddOwner => CommandKind::AddOwner {
                owner: owner("add_owner")?,
            },
            CommandOp::RemoveOwner => CommandKind::RemoveOwner {
                owner: owner("remove_owner")?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RejectionReason {
    AlreadyOpen,
    AccountNotOpen,
    NotAnOwner,
    InsufficientFunds,
    NonPositiveAmount,
    AmountTooLarge,
    LastOwner,
    AlreadyOwner,
    UnknownOwner,
    BalanceOverflow,
    VersionConflict,
}

#[derive(Deserialize)]
pub(crate) struct RejectionWire {
    reason: RejectionReason,
    issuer: Option<OwnerId>,
    owner: Option<OwnerId>,
    balance_minor: Option<i64>,
    amount_minor: Option<i64>,
    max_minor: Option<i64>,
    expected: Option<u64>,
    actual: Option<u64>,
}

impl TryFrom<RejectionWire> for Rejection {
    type Error = String;

    fn try_from(wire: RejectionWire) -> Result<Rejection, String> {
        use RejectionReason as R;
        let amount = |variant| required(wire.amount_minor, variant, "amount_minor");
        let owner = |variant| required(wire.owner, variant, "owner");
        Ok(match wire.reason {
            R::AlreadyOpen => Rejection::AlreadyOpen,
            R::AccountNotOpen => Rejection::AccountNotOpen,
            R::NotAnOwner => Rejection::NotAnOwner {
                issuer: required(wire.issuer, "not_an_owner", "issuer")?,
            },
            R::InsufficientFunds => Rejection::InsufficientFunds {
                balance_minor: required(wire.balance_minor, "insufficient_funds", "balance_minor")?,
                amount_minor: amount("insufficient_funds")?,
            },
            R::NonPositiveAmount => Rejection::NonPositiveAmount {
                amount_minor: amount("non_positive_amount")?,
            },
            R::AmountTooLarge => Rejection::AmountTooLarge {
                amount_minor: amount("amount_too_large")?,
                max_minor: required(wire.max_minor, "amount_too_large", "max_minor")?,
            },
            R::LastOwner => Rejection::LastOwner,
            R::AlreadyOwner => Rejection::AlreadyOwner {
                owner: owner("already_owner")?,
            },
            R::UnknownOwner => Rejection::UnknownOwner {
                owner: owner("unknown_owner")?,
            },
            R::BalanceOverflow => Rejection::BalanceOverflow,
            R::VersionConflict => Rejection::VersionConflict {
                expected: required(wire.expected, "version_conflict", "expected")?,
                actual: required(wire.actual, "version_conflict", "actual")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::{decode, encode, DecodeError};
    use crate::ids::{AccountId, ClientId, CommandId, OwnerId};
    use crate::{
        Command, CommandKind, Event, EventBody, OccToken, Outcome, OutcomeResult, Rejection,
    };

    fn event_with_body(body: &str) -> String {
        format!(
            r#"{{"v":1,"kind":"event","body":{{"account":1,"version":2,"command":{{"client":3,"seq":4}},"body":{body}}}}}"#
        )
    }

    fn event(body: EventBody) -> Event {
        Event {
            account: AccountId(1),
            version: 2,
            command: CommandId {
                client: ClientId(3),
                seq: 4,
            },
            body,
        }
    }

    /// The bytes the derived, tagged encoder writes are the wire format; the
    /// flat decoder reads exactly them (a changed tag or field name fails here).
    #[test]
    fn the_wire_format_is_the_tagged_one() {
        let deposited = event(EventBody::Deposited { amount_minor: 5 });
        let wire = event_with_body(r#"{"type":"deposited","amount_minor":5}"#);
        assert_eq!(String::from_utf8(encode(&deposited)).unwrap(), wire);
        assert_eq!(decode::<Event>(wire.as_bytes()), Ok(deposited));
        let outcome = Outcome {
            command: CommandId {
                client: ClientId(3),
                seq: 4,
            },
            account: AccountId(1),
            result: OutcomeResult::Rejected {
                rejection: Rejection::InsufficientFunds {
                    balance_minor: 7,
                    amount_minor: 9,
                },
            },
        };
        let wire = r#"{"v":1,"kind":"outcome","body":{"command":{"client":3,"seq":4},"account":1,"result":{"result":"rejected","rejection":{"reason":"insufficient_funds","balance_minor":7,"amount_minor":9}}}}"#;
        assert_eq!(String::from_utf8(encode(&outcome)).unwrap(), wire);
        assert_eq!(decode::<Outcome>(wire.as_bytes()), Ok(outcome));
        let command = Command {
            id: CommandId {
                client: ClientId(3),
                seq: 4,
            },
            account: AccountId(1),
            issuer: OwnerId(8),
            occ: OccToken::ExpectedVersion(2),
            kind: CommandKind::AddOwner { owner: OwnerId(9) },
        };
        let wire = r#"{"v":1,"kind":"command","body":{"id":{"client":3,"seq":4},"account":1,"issuer":8,"occ":{"occ":"expected_version","at":2},"kind":{"op":"add_owner","owner":9}}}"#;
        assert_eq!(String::from_utf8(encode(&command)).unwrap(), wire);
        assert_eq!(decode::<Command>(wire.as_bytes()), Ok(command));
    }

    /// Every variant of every flat-decoded enum decodes to what it encoded.
    #[test]
    fn every_variant_round_trips() {
        let owner = OwnerId(6);
        let bodies = [
            EventBody::Opened { owner },
            EventBody::Deposited { amount_minor: 1 },
            EventBody::Withdrawn { amount_minor: 2 },
            EventBody::OwnerAdded { owner },
            EventBody::OwnerRemoved { owner },
        ];
        for body in bodies {
            let event = event(body);
            assert_eq!(decode::<Event>(&encode(&event)), Ok(event));
        }
        let rejections = [
            Rejection::AlreadyOpen,
            Rejection::AccountNotOpen,
            Rejection::NotAnOwner { issuer: owner },
            Rejection::InsufficientFunds {
                balance_minor: -1,
                amount_minor: 3,
            },
            Rejection::NonPositiveAmount { amount_minor: 0 },
            Rejection::AmountTooLarge {
                amount_minor: 10,
                max_minor: 9,
            },
            Rejection::LastOwner,
            Rejection::AlreadyOwner { owner },
            Rejection::UnknownOwner { owner },
            Rejection::BalanceOverflow,
            Rejection::VersionConflict {
                expected: 4,
                actual: 5,
            },
        ];
        let results = rejections
            .into_iter()
            .map(|rejection| OutcomeResult::Rejected { rejection })
            .chain([OutcomeResult::Accepted { version: 3 }]);
        for result in results {
            let outcome = Outcome {
                command: CommandId {
                    client: ClientId(1),
                    seq: 1,
                },
                account: AccountId(2),
                result,
            };
            assert_eq!(decode::<Outcome>(&encode(&outcome)), Ok(outcome));
        }
        let kinds = [
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
            CommandKind::Deposit { amount_minor: -4 },
            CommandKind::Withdraw { amount_minor: 4 },
            CommandKind::AddOwner { owner },
            CommandKind::RemoveOwner { owner },
        ];
        for kind in kinds {
            let command = Command {
                id: CommandId {
                    client: ClientId(1),
                    seq: 1,
                },
                account: AccountId(2),
                issuer: owner,
                occ: OccToken::Any,
                kind,
            };
            assert_eq!(decode::<Command>(&encode(&command)), Ok(command));
        }
    }

    /// A body without its variant's field, or with an unknown tag, is refused;
    /// a field of another variant is ignored, as the derived decoder did.
    #[test]
    fn bad_bodies_are_still_refused() {
        let malformed = |body: &str| match decode::<Event>(event_with_body(body).as_bytes()) {
            Err(DecodeError::Malformed(message)) => message,
            other => panic!("{body}: expected Malformed, got {other:?}"),
        };
        assert!(malformed(r#"{"type":"deposited"}"#).contains("amount_minor"));
        assert!(malformed(r#"{"type":"opened","amount_minor":5}"#).contains("owner"));
        assert!(malformed(r#"{"type":"refunded","amount_minor":5}"#).contains("refunded"));
        assert!(malformed(r#"{"amount_minor":5}"#).contains("type"));
        assert!(malformed(r#"{"type":"deposited","amount_minor":"5"}"#).contains("string"));
        let extra = event_with_body(r#"{"type":"deposited","amount_minor":5,"owner":1}"#);
        assert_eq!(
            decode::<Event>(extra.as_bytes()),
            Ok(event(EventBody::Deposited { amount_minor: 5 }))
        );
        let outcome = r#"{"v":1,"kind":"outcome","body":{"command":{"client":3,"seq":4},"account":1,"result":{"result":"rejected","rejection":{"reason":"version_conflict","expected":1}}}}"#;
        assert!(
            matches!(decode::<Outcome>(outcome.as_bytes()), Err(DecodeError::Malformed(m)) if m.contains("actual"))
        );
    }
}
