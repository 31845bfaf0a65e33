//! The pickle reader against streams written by Python, and hostile ones.

use super::*;

#[test]
fn forbidden_global_is_named() {
    // cos\nsystem\n(S'ls'\ntR.  — the classic exploit, protocol 0.
    let err = read(b"cos\nsystem\n(S'ls'\ntR.", |_, _| false).unwrap_err();
    assert_eq!(err, PickleError::ForbiddenGlobal("os.system".into()));
}

#[test]
fn truncated_length_is_refused_before_allocation() {
    // BINBYTES claiming 4 GiB with three bytes left.
    let err = read(b"\x80\x02B\xff\xff\xff\xffabc", |_, _| true).unwrap_err();
    assert!(matches!(err, PickleError::Truncated { .. }), "{err:?}");
}

#[test]
fn a_stream_of_one_byte_opcodes_stops_at_the_object_cap() {
    let mut stream = b"\x80\x02".to_vec();
    stream.extend(std::iter::repeat_n(b']', MAX_OBJECTS + 1));
    stream.push(b'.');
    let err = read(&stream, |_, _| true).unwrap_err();
    assert!(
        matches!(
            err,
            PickleError::TooLarge {
                what: "objects",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pop_takes_the_mark_when_nothing_is_above_it() {
    // ( 0 N .  → None, the mark popped as Python's POP does.
    let p = read(b"\x80\x02(0N.", |_, _| true).unwrap();
    assert_eq!(p.get(p.root), &Obj::None);
    // A mark cannot be popped as an object: ( t needs none, ( R needs two.
    assert!(read(b"\x80\x02N(R.", |_, _| true).is_err());
}

#[test]
fn memo_shares_the_object_appended_after_put() {
    // ] q\x00 ( K\x01 K\x02 e h\x00 \x86 .  → ([1, 2], [1, 2]) with one list.
    let p = read(b"\x80\x02]q\x00(K\x01K\x02eh\x00\x86.", |_, _| true).unwrap();
    let items = p.as_seq(p.root).unwrap();
    assert_eq!(items[0], items[1]);
    assert_eq!(p.as_seq(items[0]).unwrap().len(), 2);
}
