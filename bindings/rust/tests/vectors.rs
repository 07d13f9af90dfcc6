//! The shared message test vectors (tests/vectors/ at the repository root),
//! run against code generated from their schema (tests/vectors/schema.toml
//! -> tests/vectors_schema/) and, for the ids of schemas/trading.toml,
//! against the library's own generated messages too.
//!
//! Valid cases are checked both ways (decode `hex` and compare with
//! `fields`; encode `fields` and compare with `hex`); every invalid case must
//! fail with its stated error kind.  Floats are compared by bit pattern (the
//! JSON conventions write them as hex).  This driver opts out of nothing.

#[path = "vectors_schema/mod.rs"]
#[allow(dead_code)] // only the parts the vectors exercise are used
#[rustfmt::skip]
mod vectors_schema;

use std::path::PathBuf;

use mycelium_shm::Error;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn cases(doc: &Value) -> &Vec<Value> {
    doc["cases"].as_array().expect("cases array")
}

fn type_id(case: &Value) -> u16 {
    u16::try_from(case["type_id"].as_u64().expect("type_id")).expect("type_id fits u16")
}

fn in_trading_schema(type_id: u16) -> bool {
    mycelium_shm::generated::MESSAGE_TYPES.iter().any(|(id, _)| *id == type_id)
}

#[test]
fn digest_and_canonical_text_match_the_vectors() {
    let valid = load("valid.json");
    assert_eq!(hex(&vectors_schema::SCHEMA_DIGEST), valid["digest"].as_str().expect("digest"));
    let canonical = std::fs::read_to_string(vectors_dir().join("canonical.txt")).expect("canonical.txt");
    assert_eq!(vectors_schema::SCHEMA_CANONICAL, canonical);
}

#[test]
fn valid_cases_decode_to_their_fields() {
    let valid = load("valid.json");
    let mut failures = Vec::new();
    for case in cases(&valid) {
        let name = case["name"].as_str().expect("name");
        let bytes = unhex(case["hex"].as_str().expect("hex"));
        match vectors_schema::Message::decode(type_id(case), &bytes) {
            Ok(m) => {
                if m.name() != case["message"].as_str().expect("message") {
                    failures.push(format!("{name}: decoded as {}", m.name()));
                }
                if m.to_json() != case["fields"] {
                    failures.push(format!("{name}: decoded {} != {}", m.to_json(), case["fields"]));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(cases(&valid).len() >= 10, "suspiciously few valid cases");
}

#[test]
fn valid_cases_encode_to_their_bytes() {
    let valid = load("valid.json");
    let mut failures = Vec::new();
    for case in cases(&valid) {
        let name = case["name"].as_str().expect("name");
        let message = case["message"].as_str().expect("message");
        match vectors_schema::Message::from_json(message, &case["fields"]) {
            Ok(m) => {
                let (id, payload) = m.encode();
                if id != type_id(case) || hex(&payload) != case["hex"].as_str().expect("hex") {
                    failures.push(format!("{name}: encoded ({id}, {}) != {}", hex(&payload), case["hex"]));
                }
            }
            Err(e) => failures.push(format!("{name}: fields do not load: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn valid_trading_cases_round_trip_through_the_library_messages() {
    let valid = load("valid.json");
    let mut checked = 0;
    for case in cases(&valid) {
        let id = type_id(case);
        if !in_trading_schema(id) {
            continue;
        }
        let name = case["name"].as_str().expect("name");
        let bytes = unhex(case["hex"].as_str().expect("hex"));
        let m =
            mycelium_shm::generated::Message::decode(id, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.encode(), (id, bytes), "{name}: re-encoding differs");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} trading cases");
}

fn decode_kind(result: mycelium_shm::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Decode(e)) => e.kind.as_str().to_owned(),
        other => format!("not a decode error: {other:?}"),
    }
}

#[test]
fn invalid_cases_fail_with_their_error_kind() {
    let invalid = load("invalid.json");
    let mut failures = Vec::new();
    for case in cases(&invalid) {
        let name = case["name"].as_str().expect("name");
        let want = case["error"].as_str().expect("error");
        let id = type_id(case);
        let bytes = unhex(case["hex"].as_str().expect("hex"));
        let got = decode_kind(vectors_schema::Message::decode(id, &bytes));
        if got != want {
            failures.push(format!("{name}: expected {want}, got {got}"));
        }
        if in_trading_schema(id) {
            let got = decode_kind(mycelium_shm::generated::Message::decode(id, &bytes));
            if got != want {
                failures.push(format!("{name} (library messages): expected {want}, got {got}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    let kinds: std::collections::BTreeSet<_> =
        cases(&invalid).iter().map(|c| c["error"].as_str().expect("error").to_owned()).collect();
    assert_eq!(kinds.len(), 6, "every error kind is covered: {kinds:?}");
}
