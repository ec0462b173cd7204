//! The wire codec: every record value is a JSON envelope `{"v":1,"kind":..,"body":..}`
//! so a reader can reject a wrong or future message with a typed error, and an
//! operator can read topics with any Kafka tool. Account keys are canonical
//! decimal ASCII. Decoding never panics: any bytes give a value or a `DecodeError`.

use crate::event::Event;
use crate::ids::AccountId;
use crate::money::event_amount_in_bounds;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The envelope version this build writes and reads.
pub const WIRE_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("unsupported envelope version {found} (this build reads {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("expected a {expected} record, found a {found} record")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("invalid {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
    #[error("bad account key: {0}")]
    BadKey(String),
    #[error("record has no value")]
    MissingValue,
}

/// A message type that travels in an envelope. `KIND` names it on the wire;
/// `validate` checks what serde's types cannot (ranges, relations).
pub trait WireMessage: Serialize + DeserializeOwned {
    const KIND: &'static str;

    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u16,
    kind: &'a str,
    body: &'a T,
}

/// `kind` borrows from the record's bytes when it holds no escapes (every kind
/// this crate writes), so a decode allocates nothing for it.
#[derive(Deserialize)]
struct EnvelopeIn<'a, T> {
    v: u16,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    body: T,
}

/// Only the header, for a precise error when the body did not parse.
#[derive(Deserialize)]
struct EnvelopeHeader<'a> {
    v: u16,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
}

pub fn encode<T: WireMessage>(message: &T) -> Vec<u8> {
    let envelope = EnvelopeOut {
        v: WIRE_VERSION,
        kind: T::KIND,
        body: message,
    };
    // Our message types have string keys and no fallible Serialize impls, so
    // serialisation cannot fail; if it ever did, that is a bug in this crate.
    // Sized for a typical record (an event is about 150 bytes) so that the
    // buffer is not grown three or four times while it is written.
    let mut bytes = Vec::with_capacity(ENCODE_CAPACITY_BYTES);
    serde_json::to_writer(&mut bytes, &envelope).expect("wire messages always serialise");
    bytes
}

/// The first allocation of an encoded record: most fit.
const ENCODE_CAPACITY_BYTES: usize = 256;

pub fn decode<T: WireMessage>(bytes: &[u8]) -> Result<T, DecodeError> {
    match serde_json::from_slice::<EnvelopeIn<T>>(bytes) {
        Ok(envelope) => {
            check_header(envelope.v, &envelope.kind, T::KIND)?;
            envelope.body.validate()?;
            Ok(envelope.body)
        }
        Err(body_error) => {
            // Prefer the header's story (a future version, another kind) over
            // a body parse error it would explain.
            if let Ok(header) = serde_json::from_slice::<EnvelopeHeader>(bytes) {
                check_header(header.v, &header.kind, T::KIND)?;
            }
            Err(DecodeError::Malformed(body_error.to_string()))
        }
    }
}

/// Decodes an optional record value: a missing value (tombstone) is an error
/// for every message kind.
pub fn decode_value<T: WireMessage>(value: Option<&[u8]>) -> Result<T, DecodeError> {
    decode(value.ok_or(DecodeError::MissingValue)?)
}

fn check_header(version: u16, kind: &str, expected: &'static str) -> Result<(), DecodeError> {
    if version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            supported: WIRE_VERSION,
        });
    }
    if kind != expected {
        return Err(DecodeError::WrongKind {
            expected,
            found: kind.chars().take(64).collect(),
        });
    }
    Ok(())
}

/// The canonical key of an account: its id in decimal ASCII, no sign, no
/// leading zeros. Every record about an account is keyed by it, so that the
/// partitioner co-locates them.
pub fn encode_account_key(account: AccountId) -> Vec<u8> {
    account.0.to_string().into_bytes()
}

/// A second encoding (8 bytes, big-endian) that some of the original's ATMs
/// used. The seed design's indexer counts raw keys, so mixing the two gives
/// one account two independent position counters (W3).
pub fn encode_account_key_legacy(account: AccountId) -> Vec<u8> {
    account.0.to_be_bytes().to_vec()
}

/// Strictly decodes a canonical account key.
pub fn decode_account_key(key: &[u8]) -> Result<AccountId, DecodeError> {
    let bad = |why: &str| DecodeError::BadKey(format!("{why}: {:?}", String::from_utf8_lossy(key)));
    if key.is_empty() || key.len() > 20 {
        return Err(bad("length must be 1 to 20 digits"));
    }
    if !key.iter().all(u8::is_ascii_digit) {
        return Err(bad("not decimal digits"));
    }
    if key.len() > 1 && key[0] == b'0' {
        return Err(bad("leading zero"));
    }
    let text = std::str::from_utf8(key).map_err(|_| bad("not UTF-8"))?;
    text.parse::<u64>()
        .map(AccountId)
        .map_err(|_| bad("out of range"))
}

impl WireMessage for crate::command::Command {
    const KIND: &'static str = "command";
}

impl WireMessage for Event {
    const KIND: &'static str = "event";

    fn validate(&self) -> Result<(), DecodeError> {
        let invalid = |reason: &str| DecodeError::Invalid {
            kind: Self::KIND,
            reason: reason.to_string(),
        };
        if self.version == 0 {
            return Err(invalid("version must be at least 1"));
        }
        use crate::event::EventBody::*;
        match self.body {
            Deposited { amount_minor } | Withdrawn { amount_minor }
                if !event_amount_in_bounds(amount_minor) =>
            {
                Err(invalid("amount out of bounds"))
            }
            _ => Ok(()),
        }
    }
}

impl WireMessage for crate::alarm::Alarm {
    const KIND: &'static str = "alarm";
}

impl WireMessage for crate::record::Outcome {
    const KIND: &'static str = "outcome";
}

impl WireMessage for crate::record::DeadLetter {
    const KIND: &'static str = "dead_letter";
}
