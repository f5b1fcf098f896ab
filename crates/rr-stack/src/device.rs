//! The in-memory "device" a smoltcp `Interface` runs on: a receive queue filled by
//! [`crate::Stack::receive`] and a transmit queue drained by
//! [`crate::Stack::poll_transmit`]. Nothing here touches the OS.

use std::collections::VecDeque;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SmolInstant;

use crate::Scope;

/// A packet waiting for smoltcp, with what [`crate::Stack`] learned while classifying it.
pub(crate) struct RxPacket {
    pub bytes: Vec<u8>,
    /// Set for a TCP SYN (without ACK): the listener backlog is topped up for it
    /// right before smoltcp sees the packet.
    pub syn: Option<crate::packet::SynInfo>,
}

/// Where an outgoing packet goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OutTag {
    /// Emitted by the global interface: route by FIB unless the destination is
    /// pinned to a tunnel (see `Stack::pins`).
    Global,
    /// Leaves through this tunnel, or by FIB for `None`.
    Fixed(Option<Scope>),
}

pub(crate) struct OutPacket {
    pub tag: OutTag,
    pub bytes: Vec<u8>,
}

pub(crate) struct Dev<'a> {
    pub rx: &'a mut VecDeque<RxPacket>,
    pub out: &'a mut VecDeque<OutPacket>,
    pub tag: OutTag,
    pub mtu: usize,
    /// `transmit` refuses once the shared output queue holds this many packets;
    /// smoltcp then keeps the data in its socket buffers and retries on the next poll.
    pub out_limit: usize,
}

pub(crate) struct Rx(Vec<u8>);

pub(crate) struct Tx<'a> {
    out: &'a mut VecDeque<OutPacket>,
    tag: OutTag,
}

impl phy::RxToken for Rx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut bytes = vec![0u8; len];
        let r = f(&mut bytes);
        self.out.push_back(OutPacket {
            tag: self.tag,
            bytes,
        });
        r
    }
}

impl phy::Device for Dev<'_> {
    type RxToken<'b>
        = Rx
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _ts: SmolInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let p = self.rx.pop_front()?;
        Some((
            Rx(p.bytes),
            Tx {
                out: self.out,
                tag: self.tag,
            },
        ))
    }

    fn transmit(&mut self, _ts: SmolInstant) -> Option<Self::TxToken<'_>> {
        if self.out.len() >= self.out_limit {
            return None;
        }
        Some(Tx {
            out: self.out,
            tag: self.tag,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}
