//! Arbitrary bytes as an RTR byte stream from a cache: framing and decoding never panic,
//! what the decoder accepts the encoder writes back into bytes that decode to the same
//! value, and a `Client` fed the same bytes (in two pieces, split where the first byte
//! says) never panics and only ever sends PDUs that decode.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rr_rtr::pdu::{frame, Pdu};
use rr_rtr::Client;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else {
        return;
    };
    let mut rest = stream;
    while let Ok(Some(n)) = frame(rest) {
        if let Ok((version, pdu)) = Pdu::decode(&rest[..n]) {
            let mut out = Vec::new();
            pdu.encode(version, &mut out);
            assert_eq!(frame(&out), Ok(Some(out.len())));
            assert_eq!(Pdu::decode(&out), Ok((version, pdu)));
        }
        rest = &rest[n..];
    }

    let t0 = Instant::now();
    let mut client = Client::new();
    client.connection_opened(t0);
    let split = usize::from(sel).min(stream.len());
    let (a, b) = stream.split_at(split);
    client.handle_bytes(t0, a);
    client.handle_timeout(t0 + Duration::from_secs(u64::from(sel) * 60));
    client.handle_bytes(t0, b);
    while let Some(bytes) = client.poll_transmit() {
        let n = frame(&bytes).expect("own framing").expect("whole PDU");
        assert_eq!(n, bytes.len());
        Pdu::decode(&bytes).expect("own PDU decodes");
    }
    while client.poll_event().is_some() {}
});
