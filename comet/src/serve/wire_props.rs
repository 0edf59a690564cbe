//! Property tests of the head parser: arbitrary bytes and mutated valid
//! heads never panic, give the same answer however they are split across
//! reads, and where both we and `httparse` accept a head, we read the same
//! request from it (so there are never two framings of the same bytes).

use super::wire::{body_length, parse_head, HeadScan, MAX_HEAD_BYTES};
use axum::http::Version;
use proptest::prelude::*;

const VALID: &[u8] =
    b"POST /comet/chat?x=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 12\r\nConnection: keep-alive\r\nX-A: b\r\n\r\n{\"since\":1}\n";

/// A valid head with a few bytes replaced, inserted or removed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        0..VALID.len(),
        0u8..3,
        any::<u8>(),
        prop::sample::select(b"\r\n :+-0123456789,\t\x00Hh".to_vec()),
    );
    prop::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut bytes = VALID.to_vec();
        for (at, kind, random, special) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            let byte = if random % 2 == 0 { special } else { random };
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        bytes
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), mutated(),]
}

/// What a head means for framing: method, target, version, header count,
/// body length.
type Reading = (String, String, Version, usize, Option<usize>);

fn ours(bytes: &[u8], scan: &mut HeadScan) -> Result<Option<Reading>, u16> {
    match parse_head(bytes, scan) {
        Err(refusal) => Err(refusal.status.as_u16()),
        Ok(None) => Ok(None),
        Ok(Some(head)) => Ok(Some((
            head.method.to_string(),
            head.uri.to_string(),
            head.version,
            head.headers.len(),
            body_length(&head.headers).ok(),
        ))),
    }
}

fn httparse_reading(bytes: &[u8]) -> Option<Reading> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = request.parse(bytes) else {
        return None;
    };
    let lengths: Vec<&[u8]> = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value)
        .collect();
    let length = match lengths.as_slice() {
        [] => Some(0),
        [one] => std::str::from_utf8(one).ok().and_then(|v| v.parse().ok()),
        _ => None,
    };
    Some((
        request.method?.to_owned(),
        request.path?.to_owned(),
        if request.version? == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        },
        request.headers.len(),
        length,
    ))
}

#[test]
fn the_seed_head_is_read_alike_by_both_parsers() {
    // The mutations start from a head both accept, so the comparison
    // below is exercised, not skipped.
    let ours = ours(VALID, &mut HeadScan::default()).unwrap().unwrap();
    let theirs = httparse_reading(VALID).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours.4, Some(12));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_head_reads_the_same_whole_or_in_pieces(bytes in bytes(), cut in 0usize..300) {
        let whole = ours(&bytes, &mut HeadScan::default());
        let mut scan = HeadScan::default();
        let cut = cut.min(bytes.len());
        let first = ours(&bytes[..cut], &mut scan);
        let split = match first {
            Ok(None) => ours(&bytes, &mut scan),
            done => done,
        };
        // A head complete within the first piece is the same head; a
        // refusal in the first piece is a refusal of the whole.
        prop_assert_eq!(split.is_err(), whole.is_err(), "{:?} / {:?}", split, whole);
        if let (Ok(split), Ok(whole)) = (&split, &whole) {
            prop_assert_eq!(split, whole);
        }
    }

    #[test]
    fn where_httparse_also_accepts_it_reads_the_same_request(bytes in bytes()) {
        if let Ok(Some(reading)) = ours(&bytes, &mut HeadScan::default()) {
            if let Some(theirs) = httparse_reading(&bytes) {
                // Both accept: the same method, target, version and
                // headers; a body length where ours has one must be
                // httparse's plain reading of the same digits.
                prop_assert_eq!(&reading.0, &theirs.0);
                prop_assert_eq!(&reading.1, &theirs.1);
                prop_assert_eq!(reading.2, theirs.2);
                prop_assert_eq!(reading.3, theirs.3);
                if let Some(length) = reading.4 {
                    prop_assert_eq!(Some(length), theirs.4);
                }
            }
            // Whatever we accept ends in CRLF CRLF within the limit.
            prop_assert!(bytes.windows(4).any(|w| w == b"\r\n\r\n"));
            prop_assert!(!bytes[..bytes.len().min(MAX_HEAD_BYTES)].is_empty());
        }
    }
}
