//! The wire codec: every message round-trips, and no input bytes (random,
//! truncated, mutated, or of another kind or version) make the decoder panic.

mod common;

use common::{command, event_body};
use marlow_model::codec::{decode, encode, DecodeError, WIRE_VERSION};
use marlow_model::record::DeadLetter;
use marlow_model::task::seed::{IndexedCommand, SeedSnapshot};
use marlow_model::*;
use proptest::prelude::*;

fn event() -> impl Strategy<Value = Event> {
    (0u64..1000, 1u64..1000, command(), event_body()).prop_map(|(account, version, cmd, body)| {
        Event {
            account: AccountId(account),
            version,
            command: cmd.id,
            body,
        }
    })
}

fn rejection() -> impl Strategy<Value = Rejection> {
    prop_oneof![
        Just(Rejection::AlreadyOpen),
        Just(Rejection::AccountNotOpen),
        Just(Rejection::LastOwner),
        Just(Rejection::BalanceOverflow),
        any::<u64>().prop_map(|issuer| Rejection::NotAnOwner {
            issuer: OwnerId(issuer)
        }),
        (any::<i64>(), any::<i64>()).prop_map(|(balance_minor, amount_minor)| {
            Rejection::InsufficientFunds {
                balance_minor,
                amount_minor,
            }
        }),
        any::<i64>().prop_map(|amount_minor| Rejection::NonPositiveAmount { amount_minor }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(expected, actual)| Rejection::VersionConflict { expected, actual }),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let result = prop_oneof![
        any::<u64>().prop_map(|version| OutcomeResult::Accepted { version }),
        rejection().prop_map(|rejection| OutcomeResult::Rejected { rejection }),
    ];
    (command(), result).prop_map(|(cmd, result)| Outcome {
        command: cmd.id,
        account: cmd.account,
        result,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(cmd in command()) {
        prop_assert_eq!(decode::<Command>(&encode(&cmd)), Ok(cmd));
    }

    #[test]
    fn events_round_trip(ev in event()) {
        prop_assert_eq!(decode::<Event>(&encode(&ev)), Ok(ev));
    }

    #[test]
    fn outcomes_and_alarms_round_trip(out in outcome(), balance in any::<i64>(), version in any::<u64>()) {
        prop_assert_eq!(decode::<Outcome>(&encode(&out)), Ok(out.clone()));
        let alarm = Alarm { account: out.account, version, balance_minor: balance, threshold_minor: 1000 };
        prop_assert_eq!(decode::<Alarm>(&encode(&alarm)), Ok(alarm));
    }

    #[test]
    fn seed_records_round_trip(cmd in command(), reenqueues in any::<u32>()) {
        let indexed = IndexedCommand { command: cmd.clone(), reenqueues };
        prop_assert_eq!(decode::<IndexedCommand>(&encode(&indexed)), Ok(indexed));
        let snapshot = SeedSnapshot::empty(cmd.account);
        prop_assert_eq!(decode::<SeedSnapshot>(&encode(&snapshot)), Ok(snapshot));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode::<Command>(&bytes);
        let _ = decode::<Event>(&bytes);
        let _ = decode::<Outcome>(&bytes);
        let _ = decode::<DeadLetter>(&bytes);
    }

    /// Mutating or truncating a valid encoding gives a value or an error.
    #[test]
    fn mutated_encodings_never_panic(cmd in command(), cut in any::<prop::sample::Index>(),
                                     flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = encode(&cmd);
        let at = flip.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let _ = decode::<Command>(&bytes);
        let truncated = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode::<Command>(truncated).is_err());
    }
}

#[test]
fn another_kind_is_refused_by_name() {
    let alarm = Alarm {
        account: AccountId(1),
        version: 1,
        balance_minor: 0,
        threshold_minor: 1000,
    };
    match decode::<Event>(&encode(&alarm)) {
        Err(DecodeError::WrongKind { expected, found }) => {
            assert_eq!(expected, "event");
            assert_eq!(found, "alarm");
        }
        other => panic!("expected WrongKind, got {other:?}"),
    }
}

/// A kind written with a JSON escape is the same kind: the decoder reads the
/// envelope's `kind` as JSON text, borrowed when it can be and copied when it
/// must be unescaped.
#[test]
fn an_escaped_kind_is_read_as_the_same_kind() {
    let alarm = Alarm {
        account: AccountId(1),
        version: 1,
        balance_minor: 0,
        threshold_minor: 1000,
    };
    let plain = String::from_utf8(encode(&alarm)).expect("JSON is UTF-8");
    assert!(plain.contains(r#""kind":"alarm""#), "{plain}");
    let escaped = plain.replace(r#""kind":"alarm""#, r#""kind":"\u0061larm""#);
    assert_eq!(decode::<Alarm>(escaped.as_bytes()), Ok(alarm));
}

#[test]
fn a_future_version_is_refused() {
    let bytes = br#"{"v":2,"kind":"event","body":{"whatever":true}}"#;
    assert_eq!(
        decode::<Event>(bytes),
        Err(DecodeError::UnsupportedVersion {
            found: 2,
            supported: WIRE_VERSION
        })
    );
}

#[test]
fn an_out_of_bounds_event_amount_is_refused() {
    let bytes = format!(
        r#"{{"v":1,"kind":"event","body":{{"account":1,"version":1,"command":{{"client":0,"seq":0}},"body":{{"type":"deposited","amount_minor":{}}}}}}}"#,
        i64::MAX
    );
    assert!(matches!(
        decode::<Event>(bytes.as_bytes()),
        Err(DecodeError::Invalid { .. })
    ));
}
